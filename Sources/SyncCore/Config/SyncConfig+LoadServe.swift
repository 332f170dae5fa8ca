import Foundation

/// Readers of the `erp-sync serve` sections: `serve`, `api`, `schedule`, `notifications` (README "serve").
extension ConfigReader {
    /// `serve.instanceId`: a non-empty name of at most 200 characters, `nil` when absent.
    func instanceId(_ node: ConfigNode) throws -> String? {
        _ = try node.requireMapping(allowed: ["instanceId"])
        guard let value = node.child("instanceId") else { return nil }
        let id = try value.string()
        guard !id.isEmpty, id.count <= 200 else { throw value.error("expected a non-empty instance id of at most 200 characters") }
        return id
    }

    func api(_ node: ConfigNode) throws -> APIConfig {
        var api = APIConfig()
        for (key, value) in try node.requireMapping(allowed: ["host", "port", "tokens", "allowAdHocSources", "allowedHosts", "maxBodyBytes", "corsOrigins",
                                                                       "transformer", "maxBatchSize"]) {
            switch key {
            case "host": api.host = try value.string()
            case "port": api.port = try value.int(in: 0...65_535)
            case "tokens": api.tokens = try value.sequence().map(token)
            case "allowAdHocSources": api.allowAdHocSources = try value.bool()
            case "transformer": api.transformer = try value.oneOf(APITransformer.self)
            case "maxBatchSize": api.maxBatchSize = try value.int(in: 1...10_000)
            case "allowedHosts": api.allowedHosts = try value.sequence().map { try $0.string().lowercased() }
            case "corsOrigins":
                api.corsOrigins = try value.sequence().map { node in
                    let origin = try node.string()
                    guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.isEmpty else {
                        throw node.error("expected an origin such as https://audit.example.com (scheme, host, optional port; no path), got '\(origin)'")
                    }
                    return origin
                }
            default: api.maxBodyBytes = try value.int(in: 1024...16_777_216)
            }
        }
        var names: Set<String> = []
        for (index, token) in api.tokens.enumerated() where !names.insert(token.name).inserted {
            throw ConfigError(path: "api.tokens[\(index)].name", message: "duplicate token name '\(token.name)'")
        }
        return api
    }

    func token(_ node: ConfigNode) throws -> APIToken {
        _ = try node.requireMapping(allowed: ["name", "role", "hash"])
        guard let name = try node.child("name")?.string(), !name.isEmpty else { throw node.error("'name' is required") }
        guard let roleNode = node.child("role") else { throw node.error("'role' is required (admin or viewer)") }
        guard let hashNode = node.child("hash") else {
            throw node.error("'hash' is required: sha256:<64 hex digits> (create one with `erp-sync hash-token`; never put the token itself here)")
        }
        let text = try hashNode.string()
        guard text.hasPrefix("sha256:"), let digest = Self.hexBytes(text.dropFirst(7)), digest.count == 32 else {
            throw hashNode.error("expected sha256:<64 hex digits> (create one with `erp-sync hash-token`)")
        }
        return APIToken(name: name, role: try roleNode.oneOf(APIToken.Role.self), sha256: digest)
    }

    /// `"0aff"` → `[0x0a, 0xff]`; `nil` for odd lengths or non-hex characters.
    static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    func schedule(_ node: ConfigNode) throws -> ScheduleConfig {
        var schedule = ScheduleConfig()
        for (key, value) in try node.requireMapping(allowed: ["enabled", "interval", "fullSyncAt", "timezone", "maxConcurrentRuns",
                                                                 "reconcileAfterFullSync"]) {
            switch key {
            case "enabled": schedule.enabled = try value.bool()
            case "reconcileAfterFullSync": schedule.reconcileAfterFullSync = try value.bool()
            case "interval":
                let text = try value.string()
                guard let seconds = Self.durationSeconds(text), seconds >= 5 else {
                    throw value.error("expected a duration of at least 5 seconds, such as 15m, 60m or 2h, got '\(text)'")
                }
                schedule.intervalSeconds = seconds
            case "fullSyncAt":
                schedule.fullSyncAt = try Self.wallTime(value)
            case "timezone":
                let name = try value.string()
                guard let zone = TimeZone(identifier: name) else {
                    throw value.error("'\(name)' is not an IANA time zone name (e.g. America/Sao_Paulo, UTC)")
                }
                schedule.timezone = zone
            default: schedule.maxConcurrentRuns = try value.int(in: 1...64)
            }
        }
        return schedule
    }

    /// A local time `HH:MM` (00:00 to 23:59), or `off` for `nil`.
    static func wallTime(_ value: ConfigNode) throws -> (hour: Int, minute: Int)? {
        let text = try value.string()
        if text == "off" { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...23).contains(hour), (0...59).contains(minute) else {
            throw value.error("expected a local time HH:MM (00:00 to 23:59) or off, got '\(text)'")
        }
        return (hour, minute)
    }

    func notifications(_ node: ConfigNode) throws -> NotificationsConfig {
        var notifications = NotificationsConfig()
        for (key, value) in try node.requireMapping(allowed: ["webhooks", "rejectThreshold", "dailySummaryAt"]) {
            switch key {
            case "rejectThreshold": notifications.rejectThreshold = try value.int(in: 1...Int.max)
            case "dailySummaryAt": notifications.dailySummaryAt = try Self.wallTime(value)
            default: notifications.webhooks = try value.sequence().map(webhook)
            }
        }
        return notifications
    }

    func webhook(_ node: ConfigNode) throws -> WebhookConfig {
        let entries = try node.requireMapping(allowed: ["url", "events", "secret", "secretEnv", "timeoutSeconds", "maxAttempts"])
        guard let urlNode = node.child("url") else { throw node.error("'url' is required") }
        let url = try urlNode.string()
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
            throw urlNode.error("expected an http:// or https:// URL, got '\(url)'")
        }
        let secret: String
        switch (node.child("secret"), node.child("secretEnv")) {
        case (let value?, nil): secret = try value.string()
        case (nil, let nameNode?):
            let name = try nameNode.string()
            guard let value = nameNode.environment[name] else { throw nameNode.error("environment variable \(name) is not set") }
            secret = value
        case (.some, .some): throw node.error("give either 'secret' or 'secretEnv', not both")
        case (nil, nil): throw node.error("'secretEnv' (or 'secret') is required: the HMAC key the receiver verifies signatures with")
        }
        guard !secret.isEmpty else { throw node.error("the webhook secret must not be empty") }
        var webhook = WebhookConfig(url: url, secret: Secret(secret))
        for (key, value) in entries {
            switch key {
            case "events":
                webhook.events = Set(try value.sequence().map { try $0.oneOf(WebhookConfig.Event.self) })
                guard !webhook.events.isEmpty else { throw value.error("list at least one event (\(WebhookConfig.Event.allCases.map(\.rawValue).joined(separator: ", ")))") }
            case "timeoutSeconds": webhook.timeoutSeconds = try value.int(in: 1...300)
            case "maxAttempts": webhook.maxAttempts = try value.int(in: 1...20)
            default: break
            }
        }
        return webhook
    }
}
