import ArgumentParser
import Foundation
import Logging
import NIOCore
import SyncCore
import SyncServer

/// `erp-sync serve`: the tRPC admin API, the scheduler, webhooks and metrics, until SIGTERM/SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API (tRPC wire format), the scheduler, webhooks and /metrics until SIGTERM.",
        discussion: "Keys: api (host, port, tokens, allowAdHocSources, allowedHosts, maxBodyBytes, corsOrigins, transformer, maxBatchSize), "
            + "schedule (enabled, interval, fullSyncAt, timezone, maxConcurrentRuns), notifications.webhooks, serve.instanceId; see README "
            + "\"serve\". Several instances may share one PostgreSQL destination and one config: each source is run by one instance "
            + "at a time (a lease of destination.leasePeriod) and each scheduled slot once; see README \"Several serve instances\". "
            + "Without a schedule section nothing is scheduled; at startup serve prints what is scheduled and when. On SIGTERM or "
            + "SIGINT running syncs finish their current batch and commit it, the run is recorded PARTIAL (CANCELLED), and the "
            + "process exits 0."
    )

    @OptionGroup var global: ConfigOptions

    @Option(help: "Listen address; overrides api.host.")
    var host: String?

    @Option(help: "Listen port (0 = any free port); overrides api.port.")
    var port: Int?

    @Option(help: "This instance's name in leases, slots and erp.getStatus; overrides serve.instanceId (default <hostname>:<pid>).")
    var instanceId: String?

    @Option(help: "Log format on stderr: json (one object per line, for log collectors) or text.")
    var logFormat = "json"

    func validate() throws {
        guard ["json", "text"].contains(logFormat) else { throw ValidationError("--log-format must be json or text") }
        if let port, !(0...65_535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if let instanceId, instanceId.isEmpty || instanceId.count > 200 { throw ValidationError("--instance-id must be 1 to 200 characters") }
    }

    func run() async throws {
        var config = try global.loadConfig(jsonLogs: logFormat == "json")
        if let host { config.api.host = host }
        if let port { config.api.port = port }
        if let instanceId { config.lease.instanceId = instanceId }
        let logger = Logger(label: "erp-sync")
        if config.api.tokens.isEmpty {
            logger.warning("api.tokens is empty: every /trpc call will be refused (UNAUTHORIZED); create a token with `erp-sync hash-token`")
        }
        let destination = try await global.openDestination(config)
        let listenHost = config.api.host
        let server = await buildApplication(ServerDependencies(
            config: config, destination: destination, makeSource: Connectors.source, availableSources: Connectors.availableSources,
            logger: logger,
            onListening: { port in
                FileHandle.standardOutput.write(Data("erp-sync serve: listening on http://\(listenHost):\(port)\n".utf8))
            }))
        FileHandle.standardOutput.write(Data((Self.scheduleLines(config, scheduler: server.scheduler).joined(separator: "\n") + "\n").utf8))
        do {
            try await server.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            await destination.close()
            printError("cannot listen on \(listenHost):\(config.api.port): the address is already in use (another server, or a second erp-sync serve?)")
            throw ExitCodes.unavailable
        } catch {
            await destination.close()
            printError("the server stopped: \(error)")
            throw ExitCodes.unavailable
        }
        await destination.close()
    }

    /// What `serve` prints at startup about the schedule: nothing scheduled, or each kind of run with its first time.
    static func scheduleLines(_ config: SyncConfig, scheduler: Scheduler?, now: Instant = .now) -> [String] {
        guard let scheduler else {
            return ["erp-sync serve: nothing is scheduled (no schedule section, or schedule.enabled: false); syncs run through the API only"]
        }
        let schedule = config.schedule
        let runs = scheduler.plannedRuns(from: now)
        let every = schedule.intervalSeconds % 60 == 0 ? "\(schedule.intervalSeconds / 60)m" : "\(schedule.intervalSeconds)s"
        var lines = ["erp-sync serve: incremental sync of each source every \(every), first at "
            + (runs.first { $0.syncType == .incremental }?.dueAt.isoMillis ?? "-")]
        if let time = schedule.fullSyncAt, let full = runs.first(where: { $0.syncType == .full }) {
            let wall = String(format: "%02d:%02d", time.hour, time.minute)
            lines.append("erp-sync serve: full sync of each source daily at \(wall) \(schedule.timezone.identifier), next at \(full.dueAt.isoMillis)")
        }
        return lines
    }
}
