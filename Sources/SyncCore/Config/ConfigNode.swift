import Yams

/// A YAML node with the key path that reached it, for readers that report errors by key.
struct ConfigNode {
    let node: Node
    let path: String
    let environment: [String: String]

    var line: Int? { node.mark.map { $0.line } }

    func error(_ message: String) -> ConfigError { ConfigError(path: path, message: message, line: line) }

    func child(_ key: String) -> ConfigNode? {
        guard case .mapping(let mapping) = node else { return nil }
        for (k, v) in mapping where k.string == key {
            if case .scalar(let s) = v, s.tag.description.hasSuffix(":null") || (s.string == "~" || s.string == "null") && s.style == .plain {
                return nil
            }
            return ConfigNode(node: v, path: path.isEmpty ? key : "\(path).\(key)", environment: environment)
        }
        return nil
    }

    /// Fails when the mapping holds a key outside `allowed` (typos such as `batchsize` must not pass silently).
    func requireMapping(allowed: Set<String>) throws -> [(String, ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of keys") }
        var entries: [(String, ConfigNode)] = []
        for (k, v) in mapping {
            guard let key = k.string else { throw error("keys must be text") }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            guard allowed.contains(key) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw ConfigError(path: childPath, message: "unknown key '\(key)' (known keys here: \(known))", line: k.mark?.line)
            }
            entries.append((key, ConfigNode(node: v, path: childPath, environment: environment)))
        }
        return entries
    }

    func sequence() throws -> [ConfigNode] {
        guard case .sequence(let seq) = node else { throw error("expected a list") }
        return seq.enumerated().map { ConfigNode(node: $1, path: "\(path)[\($0)]", environment: environment) }
    }

    /// The scalar text with `${VAR}` and `${VAR:-default}` replaced from the environment.
    func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a text value") }
        return try interpolate(scalar.string)
    }

    func interpolate(_ text: String) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw error("unterminated ${ in '\(text)'")
            }
            let expression = rest[open.upperBound..<close]
            let (name, fallback): (Substring, Substring?) = {
                if let sep = expression.range(of: ":-") { return (expression[..<sep.lowerBound], expression[sep.upperBound...]) }
                return (expression, nil)
            }()
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw error("'${\(expression)}' is not a valid environment reference (use ${NAME} or ${NAME:-default})")
            }
            if let value = environment[String(name)] {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                throw error("environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    func int(in range: ClosedRange<Int>) throws -> Int {
        let text = try string()
        guard let value = Int(text) else { throw error("expected a whole number, got '\(text)'") }
        guard range.contains(value) else { throw error("must be between \(range.lowerBound) and \(range.upperBound), got \(value)") }
        return value
    }

    func bool() throws -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error("expected true or false, got '\(other)'")
        }
    }

    func oneOf<T: RawRepresentable>(_ type: T.Type) throws -> T where T.RawValue == String, T: CaseIterable {
        let text = try string()
        guard let value = T(rawValue: text) else {
            throw error("'\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}
