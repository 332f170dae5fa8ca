/// A configuration problem, found before any connection is opened.
///
/// `path` names the key the way the YAML reads (`sources[1].stream.cursor.kind`), `line` is the
/// 1-based line in the file when known.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The key path, e.g. `defaults.batchSize`.
    public var path: String
    /// What is wrong and what would be right.
    public var message: String
    /// 1-based line of the offending node in the YAML file, when known.
    public var line: Int?

    /// Creates an error for the key at `path`.
    public init(path: String, message: String, line: Int? = nil) {
        self.path = path
        self.message = message
        self.line = line
    }

    /// `config: <path> (line N): <message>`.
    public var description: String {
        let location = line.map { " (line \($0))" } ?? ""
        return path.isEmpty ? "config\(location): \(message)" : "config: \(path)\(location): \(message)"
    }
}
