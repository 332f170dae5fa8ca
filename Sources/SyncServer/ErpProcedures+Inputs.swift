import Foundation
import SyncCore

/// The inputs of the `erp.*` procedures: strict JSON objects whose unknown keys are a `BAD_REQUEST` naming
/// the key (``StrictInput``).
extension ErpProcedures {
    // MARK: Inputs

    /// A source by name, or the seed's ad-hoc `ErpConfig`, plus the seed's `SyncOptions` for `syncNow`.
    struct SourceInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case source, type, host, port, database, username, password, ssl, fullSync, daysBack, batchSize, maxRecords
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var source: String?
        var type: String?
        var host: String?
        var port: Int?
        var database: String?
        var username: String?
        var password: String?
        var ssl: FlexibleSSL?
        var fullSync: Bool?
        var daysBack: Int?
        var batchSize: Int?
        var maxRecords: Int?

        static let empty = SourceInput()

        /// Whether the body carries connection fields (the seed's ad-hoc `ErpConfig`).
        var hasConnectionFields: Bool { type != nil || host != nil || database != nil || username != nil || password != nil }
    }

    /// The seed sends `ssl: true`; the config uses `disable | prefer | require`.
    struct FlexibleSSL: Decodable {
        var mode: SSLMode

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) {
                mode = flag ? .require : .disable
                return
            }
            let text = try container.decode(String.self)
            guard let mode = SSLMode(rawValue: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected true, false, disable, prefer or require, got '\(text)'")
            }
            self.mode = mode
        }
    }

    struct HistoryInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case limit, source
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var limit: Int?
        var source: String?
    }

    struct ErrorsInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case source, syncId, reasonCode, kind, limit, cursor, includeResolved
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var source: String?
        var syncId: String?
        var reasonCode: String?
        var kind: String?
        var limit: Int?
        /// The `nextCursor` of the previous page.
        var cursor: Int?
        /// Also entries already resolved (default: open ones).
        var includeResolved: Bool?
    }

    struct RunInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case syncId
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var syncId: String
    }

    struct ReconcileInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case source, from, to
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var source: String
        var from: String?
        var to: String?
    }

    struct ReconciliationInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case source, id
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var source: String?
        var id: String?
    }

    /// `lastEventId` is how tRPC's `httpSubscriptionLink` resumes a tracked subscription: the link adds it to the
    /// input (`contentType.ts` in `@trpc/server` merges the `Last-Event-ID` header in too), so it is a key here.
    struct ProgressInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable {
            case source, lastEventId
        }
        static let keys = CodingKeys.allCases.map(\.rawValue)

        var source: String?
        var lastEventId: String?
    }

    /// Fails with `NOT_FOUND` when `name` is given and names no configured source.
    func checkSource(_ name: String?) throws {
        if let name, config.source(named: name) == nil {
            throw TRPCError(.notFound, "input.source: no source named '\(name)' (known: \(sourceNames))")
        }
    }
}
