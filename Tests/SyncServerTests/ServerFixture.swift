import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLiteConnector
import SQLiteNIO
import SyncCore
import Synchronization
import SyncServer
import Testing

/// A scratch ERP (the seed's `sale_transactions`, SQLite) and SQLite audit database, a configuration with an
/// admin and a viewer token, and the server built from it by `buildApplication`.
final class ServerFixture: Sendable {
    let folder: URL
    let erpPath: String
    let config: SyncConfig
    let destination: SQLiteDestination
    let server: ErpSyncServer
    let adminToken: String
    let viewerToken: String

    /// Creates the fixture.
    /// - Parameters:
    ///   - rows: sales in the ERP.
    ///   - apiYAML: extra `api` keys (indented two spaces).
    ///   - schedule: the `schedule` section (default: off).
    ///   - yaml: extra top-level config sections.
    ///
    /// Sources: `loja-centro` and `loja-sul` read the scratch ERP, `loja-norte` points at a missing file.
    ///   - makeSource: how sources open (default: SQLite files); tests wrap it to slow or gate reads.
    ///   - heartbeat: the ping interval of event streams.
    init(rows: Int = 250, apiYAML: String = "", schedule: String = "{ enabled: false }", yaml: String = "",
         clock: any SchedulerClock = SystemSchedulerClock(), makeSource: SyncService.SourceFactory? = nil,
         heartbeat: Duration = .seconds(15)) async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("erp-sync-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        erpPath = folder.appendingPathComponent("erp.sqlite").path
        try await Self.makeERP(at: erpPath, rows: rows)
        let admin = TokenAuthenticator.generateToken(), viewer = TokenAuthenticator.generateToken()
        adminToken = admin.token
        viewerToken = viewer.token
        config = try SyncConfig.load(yaml: """
            destination: { type: sqlite, path: \(folder.appendingPathComponent("audit.sqlite").path) }
            defaults: { batchSize: 100, daysBack: 0, lookback: 0s, retryDelayMs: 1 }
            api:
              port: 0
              tokens:
                - { name: ops, role: admin, hash: "\(admin.hash)" }
                - { name: auditor, role: viewer, hash: "\(viewer.hash)" }
            \(apiYAML)
            schedule: \(schedule)
            \(yaml)
            sources:
              - { name: loja-centro, type: sqlite, path: \(erpPath), timezone: America/Sao_Paulo }
              - { name: loja-norte, type: sqlite, path: \(folder.appendingPathComponent("missing.sqlite").path) }
              - { name: loja-sul, type: sqlite, path: \(erpPath), timezone: America/Sao_Paulo }
            """)
        destination = try await SQLiteDestination(path: folder.appendingPathComponent("audit.sqlite").path)
        try await destination.migrate()
        server = await buildApplication(ServerDependencies(
            config: config, destination: destination,
            makeSource: makeSource ?? Self.openSQLite, availableSources: [.sqlite],
            clock: clock, logger: Logger(label: "erp-sync-test"), webhookRetryDelay: .milliseconds(50), heartbeat: heartbeat))
    }

    @Sendable static func openSQLite(_ config: SourceConfig) async throws -> any Source {
        guard config.type == .sqlite else { throw SyncFailure.unsupported(config.type) }
        guard let path = config.path, FileManager.default.fileExists(atPath: path) else {
            throw SyncFailure(code: .sourceUnavailable, message: "no ERP database at \(config.path ?? "?")", isTransient: false)
        }
        return try await SQLiteSource(path: path)
    }

    /// The seed's table with `rows` sales (ids 1...rows, one a minute from 2024-01-15 08:00).
    static func makeERP(at path: String, rows: Int) async throws {
        let erp = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await erp.query("""
            CREATE TABLE sale_transactions (id INTEGER PRIMARY KEY, pdv TEXT, operator TEXT, amount NUMERIC(12,2), timestamp TEXT,
                type TEXT, reference TEXT)
            """)
        _ = try await erp.query("BEGIN")
        for id in stride(from: 1, through: rows, by: 1) {
            let minute = id - 1
            let time = String(format: "2024-01-15 %02d:%02d:00", 8 + minute / 60, minute % 60)
            _ = try await erp.query("INSERT INTO sale_transactions VALUES (?, ?, ?, ?, ?, ?, ?)",
                                    [.integer(id), .text("pdv-\(id % 3)"), .text("op-\(1000 + id % 7)"), .text("\(id).90"), .text(time),
                                     .text(id % 10 == 0 ? "cancel" : "sale"), .text("ref-\(id)")])
        }
        _ = try await erp.query("COMMIT")
        try await erp.close()
    }

    /// Runs `body` with a fixture, then closes it and removes its folder.
    static func with(rows: Int = 250, apiYAML: String = "", schedule: String = "{ enabled: false }", yaml: String = "",
                     clock: any SchedulerClock = SystemSchedulerClock(), makeSource: SyncService.SourceFactory? = nil,
                     heartbeat: Duration = .seconds(15), _ body: (ServerFixture) async throws -> Void) async throws {
        let fixture = try await ServerFixture(rows: rows, apiYAML: apiYAML, schedule: schedule, yaml: yaml, clock: clock, makeSource: makeSource,
                                              heartbeat: heartbeat)
        do {
            try await body(fixture)
        } catch {
            await fixture.close()
            throw error
        }
        await fixture.close()
    }

    func close() async {
        await server.runner.stop()
        await destination.close()
        try? FileManager.default.removeItem(at: folder)
    }

    /// `Authorization: Bearer <token>` headers.
    static func bearer(_ token: String?) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return headers
    }
}

/// A response body parsed as JSON.
func json(_ buffer: ByteBuffer) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
}

/// `value` as a `[String: Any]`, or a test failure.
func object(_ value: Any?, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    try #require(value as? [String: Any], sourceLocation: sourceLocation)
}

/// `input=` query value: JSON, percent-encoded as a tRPC client does.
func encodedInput(_ json: String) -> String {
    json.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
}

/// Holds reads back until opened: lets a test keep a sync running as long as it needs.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private(set) var arrivals = 0
    private let arrivalCount = Mutex(0)

    /// ``arrivals`` without waiting for the actor.
    nonisolated var arrivalsNow: Int { arrivalCount.withLock { $0 } }

    func wait() async {
        arrivals += 1
        arrivalCount.withLock { $0 += 1 }
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}

/// A source whose reads wait at a gate.
struct GatedSource: Source {
    let base: any Source
    let gate: Gate

    func read(_ page: PageRequest, of stream: StreamConfig) async throws -> [[SourceValue]] {
        await gate.wait()
        return try await base.read(page, of: stream)
    }

    func estimateRows(of stream: StreamConfig, from bound: StreamBound) async throws -> Int? {
        try await base.estimateRows(of: stream, from: bound)
    }
    func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint?, splitAt lower: SourceValue,
                     _ upper: SourceValue, of stream: StreamConfig) async throws -> [RangeFingerprint]? {
        try await base.fingerprint(cursorFrom: first, through: last, upTo: position, splitAt: lower, upper, of: stream)
    }
    var checksumsRows: Bool { base.checksumsRows }
    func testConnection() async throws -> String { try await base.testConnection() }
    func close() async { await base.close() }
}

/// Polls `condition` every 20 ms for up to `seconds`. The default is generous: the whole suite runs its suites in
/// parallel on two cores, where scheduled runs that take a second alone were seen to take 30–45 s; a condition that
/// holds returns at once, one that never holds still fails.
func eventually(_ seconds: Double = 300, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}
