public import Foundation
public import Logging
import Synchronization
import SyncCore

/// Writes one JSON object per log line (`erp-sync serve --log-format json`): `ts` (ISO 8601 UTC, ms), `level`,
/// `label`, `message`, then the metadata (`syncId`, `source` … as the engine sets them).
///
/// Redaction, whatever a caller logs: values of keys naming a secret (`password`, `secret`, `token`,
/// `authorization`) print as `******`; `operator` values are masked to their last two characters
/// (`****42`), since operator ids identify employees.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let write: @Sendable (Data) -> Void

    /// A handler writing to standard error.
    public init(label: String, level: Logger.Level) {
        self.init(label: label, level: level) { line in
            Self.stderrLock.withLock { _ in FileHandle.standardError.write(line) }
        }
    }

    /// A handler writing each line to `write` (tests capture lines).
    public init(label: String, level: Logger.Level, write: @escaping @Sendable (Data) -> Void) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    private static let stderrLock = Mutex<Void>(())

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        let level = event.level
        let message = event.message
        var object: [String: String] = [:]
        for (key, value) in merged { object[key] = Self.redact(key: key, value: "\(value)") }
        object["ts"] = Instant.now.isoMillis
        object["level"] = level.rawValue
        object["label"] = label
        object["message"] = message.description
        if let error = event.error { object["error"] = "\(error)" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(object) else { return }
        data.append(UInt8(ascii: "\n"))
        write(data)
    }

    /// The value to print for a metadata entry.
    static func redact(key: String, value: String) -> String {
        let lower = key.lowercased()
        if ["password", "secret", "token", "authorization"].contains(where: lower.contains) { return "******" }
        if lower == "operator" { return maskOperator(value) }
        return value
    }

    /// `****` plus the last two characters (`12345` → `****45`); short ids become `****`.
    public static func maskOperator(_ id: String) -> String {
        id.count > 4 ? "****" + id.suffix(2) : "****"
    }
}
