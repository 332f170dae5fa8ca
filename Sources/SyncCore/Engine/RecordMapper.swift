import Foundation

/// A source row that could not become a record: kept in `tb_sync_errors` with its reason and raw values.
public struct RejectedRow: Error, Sendable, Hashable {
    /// Why a row was rejected; the code is stored in `tb_sync_errors.reason_code`.
    public enum Reason: String, Sendable, Codable, CaseIterable {
        /// A required field (pdv, operator, amount, occurredAt, type, externalId) is NULL or empty.
        case missingField = "MISSING_FIELD"
        /// `0000-00-00`-style zero date, or a zero month/day (MySQL under `sql_mode=''`).
        case zeroDate = "ZERO_DATE"
        /// A timestamp that is not a date-time at all: unrecognised text, `infinity`, a number.
        case invalidTimestamp = "INVALID_TIMESTAMP"
        /// A date-time that does not exist (`2024-02-30`, month 13, hour 24, a year outside 1 ... 9999): kept with
        /// its raw value, never rolled over into another date (SPEC.md "Validation").
        case invalidDate = "INVALID_DATE"
        /// `occurredAt` further in the future than `validation.maxFuture`.
        case futureTimestamp = "FUTURE_TIMESTAMP"
        /// The cursor column is NULL: the row has no position in the stream.
        case nullCursor = "NULL_CURSOR"
        /// The cursor lies further in the future than `validation.maxFuture` (a `9999-12-31` sentinel, a wrong
        /// clock): reading it would move the checkpoint past every row still to come.
        case futureCursor = "FUTURE_CURSOR"
        /// Not a number, or not finite.
        case invalidAmount = "INVALID_AMOUNT"
        /// More fraction digits than the currency has (e.g. `1.005` BRL) in an exact column.
        case amountScale = "AMOUNT_SCALE"
        /// The sign breaks the type's sign rule (e.g. a negative `sale`).
        case signMismatch = "SIGN_MISMATCH"
        /// A text value longer than its destination column.
        case tooLong = "TOO_LONG"
        /// Bytes that are not valid UTF-8 text.
        case invalidEncoding = "INVALID_ENCODING"
        /// The source database could not compute the row's mapped fields (a `{ sql: }` expression failing on it:
        /// `to_date('20240230', …)`, a division by zero, a bad cast); the message is the database's.
        case sourceError = "SOURCE_ERROR"
        /// Another row of the same page has the same `externalId` and different values: the stream's `primaryKey`
        /// (or its `externalId` mapping) does not identify a row, as a query stream's or a mapped column's may not.
        /// The first row loads; each other one is kept here rather than merged into it.
        case duplicateKey = "DUPLICATE_KEY"
    }

    public var reason: Reason
    /// Human-readable detail naming the field: `occurredAt: zero date '0000-00-00 00:00:00'`.
    public var message: String
    /// The ERP's key for the row when it could be read.
    public var externalId: String?
    /// The primary key values as the source returned them, to read the row again by key (`reprocess`); not part
    /// of the fingerprint.
    public var key: [SourceValue]?
    /// The row's values by select-list column name, JSON-ready (exact text, NULL as `nil`).
    public var raw: [String: String?]
    /// The row is refused for its cursor value (NULL, not a date-time, an impossible date, beyond the future limit):
    /// it has no place in the stream's order, so it never becomes the checkpoint (``PreparedBatch/checkpoint``). Not part
    /// of the fingerprint.
    public var refusesCursor = false

    /// Creates a rejection. The audit database cannot store U+0000 in text: a NUL in `message` (which quotes the bad
    /// value) is written `\0`, and an `externalId` holding one is not kept (the raw values and `key` keep the exact
    /// value: `jsonValue` and ``SourceValue``'s coding spell it in base64).
    public init(reason: Reason, message: String, externalId: String?, raw: [String: String?], key: [SourceValue]? = nil) {
        self.key = key
        self.reason = reason
        self.message = message.holdsNUL ? message.replacingOccurrences(of: "\u{0}", with: "\\0") : message
        self.externalId = externalId?.holdsNUL == true ? nil : externalId
        self.raw = raw
    }

    /// The raw values as a JSON object with sorted keys.
    public var rawJSON: String {
        let object = raw.mapValues { $0 ?? NSNull() as Any }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A stable fingerprint of the row and reason, so re-reading the same bad row updates its quarantine
    /// entry instead of adding another.
    public var fingerprint: String { ContentHash.of([reason.rawValue, externalId, rawJSON]) }
}

/// Turns one source row into a ``SaleTransaction`` or a ``RejectedRow``: normalization (time zone to UTC,
/// exact decimals, trimmed text, canonical types) then validation (SPEC.md "Loading the destination
/// correctly", "Validation").
public struct RecordMapper: Sendable {
    /// Longest accepted text per field, in characters (the destination's column sizes).
    public static let maxLengths: [StreamConfig.Field: Int] = [
        .externalId: 128, .pdv: 64, .operator: 64, .currency: 3, .type: 64, .reference: 256,
    ]

    let sourceId: String
    let stream: StreamConfig
    let zone: ZoneConverter
    let currency: String
    /// ``CurrencyScale/scale(of:)`` of the source's currency.
    let currencyScale: Int
    let validation: ValidationOptions
    let columns: [String]
    /// Select-list position of each mapped field, by ``StreamConfig/Field/slot``: resolved once here, because
    /// a name lookup per field and row costs more than the rest of the mapping.
    private let fieldColumns: [Int?]
    /// ``maxLengths`` by ``StreamConfig/Field/slot``.
    private let fieldMaxLengths: [Int?]
    /// Columns whose undecodable bytes reject the row as an encoding problem: the key (when it is the external
    /// id) and every mapped field.
    private let encodingChecked: [Int]
    private let deletedColumn: Int?
    /// ``ValidationOptions/signRules`` by ``TransactionType/slot``.
    private let signRules: [ValidationOptions.Sign]

    /// Creates a mapper for rows of `source.stream` laid out as ``StreamLayout/columns(of:)``.
    public init(source: SourceConfig, validation: ValidationOptions) {
        sourceId = source.name
        stream = source.stream
        zone = ZoneConverter(zone: source.timezone)
        currency = source.currency.uppercased()
        currencyScale = CurrencyScale.scale(of: source.currency)
        self.validation = validation
        columns = StreamLayout.columns(of: source.stream)
        let columnIndex = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let fields = StreamConfig.Field.allCases.sorted { $0.slot < $1.slot }
        fieldColumns = fields.map { columnIndex[$0.rawValue] }
        fieldMaxLengths = fields.map { Self.maxLengths[$0] }
        let keyColumns = columnIndex[StreamConfig.Field.externalId.rawValue] == nil ? Array(1...source.stream.primaryKey.count) : []
        encodingChecked = keyColumns + fields.compactMap { columnIndex[$0.rawValue] }
        deletedColumn = columnIndex["deleted"]
        signRules = TransactionType.allCases.sorted { $0.slot < $1.slot }.map { validation.signRules[$0] ?? .any }
    }

    /// The stream position of a row (its cursor and key values).
    public func position(of row: [SourceValue]) -> Checkpoint {
        Checkpoint(cursor: row[0], key: Array(row[1...stream.primaryKey.count]))
    }

    /// The rejection of a row the database could not compute, known only by its position (cursor and key).
    public func uncomputable(at position: Checkpoint, message: String) -> RejectedRow {
        var raw: [String: String?] = ["cursor": position.cursor.jsonValue]
        for (index, value) in position.key.enumerated() { raw["key.\(index)"] = value.jsonValue }
        return RejectedRow(reason: .sourceError, message: message, externalId: Self.externalId(ofKey: position.key), raw: raw, key: position.key)
    }

    /// The rejection of a row whose `externalId` another row of its page already has, with different values
    /// (``RejectedRow/Reason/duplicateKey``).
    public func duplicateKey(_ row: [SourceValue], externalId: String) -> RejectedRow {
        rejection(of: row, externalId: externalId, .duplicateKey,
                  "externalId '\(externalId)': another row of the same page has this id and other values; the stream's primaryKey "
                      + "(\(stream.primaryKey.joined(separator: ", "))) or its externalId mapping does not identify a row")
    }

    /// The external id of a row's primary key values, as the default `externalId` mapping makes it: a one-column key's
    /// text exactly as the source returned it; a composite key's values joined with `|`, each with `\` and `|` escaped
    /// by a `\` (so `x|y`,`z` and `x`,`y|z` stay two ids; a key without either character reads as before). Never trimmed:
    /// the connectors cut CHAR padding where the type has it (PostgreSQL `character(n)`, ODBC `SQL_CHAR`; MariaDB
    /// returns CHAR unpadded), and any other space, tab, line break or NUL is part of the key, or two rows of a text key
    /// (`K1`, `K1 `, `K1<TAB>`) would load as one. `nil` when a value is NULL or not text.
    public static func externalId(ofKey key: [SourceValue]) -> String? {
        if key.count == 1 { return key[0].text }
        var parts: [String] = []
        parts.reserveCapacity(key.count)
        for value in key {
            guard let text = value.text else { return nil }
            parts.append(text.utf8.contains(where: { $0 == UInt8(ascii: "|") || $0 == UInt8(ascii: "\\") })
                ? text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|") : text)
        }
        return parts.joined(separator: "|")
    }

    /// The ERP key of a row as text: its `externalId` mapping's value exactly, or ``externalId(ofKey:)`` of its primary key.
    public func externalId(of row: [SourceValue]) -> String? {
        if let index = fieldColumns[StreamConfig.Field.externalId.slot] { return row[index].text }
        return Self.externalId(ofKey: Array(row[1...stream.primaryKey.count]))
    }

    /// A rejection of `row` with its raw values by column name and its primary key values.
    private func rejection(of row: [SourceValue], externalId: String?, _ reason: RejectedRow.Reason, _ message: String) -> RejectedRow {
        var raw: [String: String?] = [:]
        for (index, name) in columns.enumerated() { raw[name] = row[index].jsonValue }
        return RejectedRow(reason: reason, message: message, externalId: externalId, raw: raw, key: Array(row[1...stream.primaryKey.count]))
    }

    /// Why text holding U+0000 is refused. It is valid UTF-8, but PostgreSQL's `text` and `jsonb` cannot hold it
    /// (PostgreSQL documentation, "Character Types": the character with code zero cannot be stored): loaded, it
    /// failed its batch on every run and stopped the stream there. Refused in the core for every destination, so
    /// an audit never holds a value another destination would refuse; NUL at either end is CHAR padding, trimmed.
    static let nulMessage = "holds the character U+0000 (NUL), which the audit database cannot store"

    /// Maps and validates one row.
    /// - Parameters:
    ///   - row: values in ``StreamLayout/columns(of:)`` order.
    ///   - now: the current instant, for the future-timestamp rule.
    public func map(_ row: [SourceValue], now: Instant) -> Result<SaleTransaction, RejectedRow> {
        Result { () throws(RejectedRow) in try record(row, now: now) }
    }

    private func record(_ row: [SourceValue], now: Instant) throws(RejectedRow) -> SaleTransaction {
        let externalId = externalId(of: row)
        func reject(_ reason: RejectedRow.Reason, _ message: String) -> RejectedRow {
            rejection(of: row, externalId: externalId, reason, message)
        }
        func value(_ field: StreamConfig.Field) -> SourceValue {
            fieldColumns[field.slot].map { row[$0] } ?? .null
        }
        func text(_ field: StreamConfig.Field, required: Bool) throws(RejectedRow) -> String? {
            let raw = value(field)
            if case .bytes(let data) = raw, String(validating: data, as: UTF8.self) == nil {
                throw reject(.invalidEncoding, "\(field.rawValue): not valid UTF-8")
            }
            let trimmed = raw.text?.trimmingSpaces()
            if required && (trimmed?.isEmpty ?? true) {
                throw reject(.missingField, "\(field.rawValue): required, got \(trimmed == nil ? "NULL" : "an empty value")")
            }
            if let trimmed, trimmed.holdsNUL { throw reject(.invalidEncoding, "\(field.rawValue): \(Self.nulMessage)") }
            // A character takes at least one UTF-8 byte, so only longer byte counts need counting characters.
            if let trimmed, let max = fieldMaxLengths[field.slot], trimmed.utf8.count > max, trimmed.count > max {
                throw reject(.tooLong, "\(field.rawValue): \(trimmed.count) characters, at most \(max)")
            }
            return trimmed
        }

        func rejectCursor(_ reason: RejectedRow.Reason, _ message: String) -> RejectedRow {
            var rejected = reject(reason, "cursor \(stream.cursor.column): " + message)
            rejected.refusesCursor = true
            return rejected
        }
        if row[0].isNull { throw rejectCursor(.nullCursor, "NULL, the row has no stream position") }
        var cursorInstant: Instant?
        if stream.cursor.kind == .timestamp {
            switch instant(row[0]) {
            case .failure(let error): throw rejectCursor(Self.reason(error), describe(error, row[0]))
            case .success(let v): cursorInstant = v
            }
            if let cursorInstant, cursorInstant.seconds > now.seconds + validation.maxFutureSeconds {
                throw rejectCursor(.futureCursor, "\(row[0].jsonValue ?? "") is more than \(validation.maxFutureSeconds) s in the future")
            }
        }
        // Undecodable bytes in any mapped field (or in the key, when it is the external id) are an encoding
        // problem, not a missing value, a bad number or a bad timestamp.
        for index in encodingChecked {
            if case .bytes(let data) = row[index], String(validating: data, as: UTF8.self) == nil {
                throw reject(.invalidEncoding, "\(columns[index]): not valid UTF-8")
            }
        }
        guard let externalId, !externalId.isEmpty else { throw reject(.missingField, "externalId: required, got NULL") }
        if externalId.holdsNUL { throw reject(.invalidEncoding, "externalId: \(Self.nulMessage)") }
        let maxIdLength = fieldMaxLengths[StreamConfig.Field.externalId.slot]!
        if externalId.utf8.count > maxIdLength, externalId.count > maxIdLength {
            throw reject(.tooLong, "externalId: \(externalId.count) characters, at most \(maxIdLength)")
        }
        let pdv = try text(.pdv, required: true)
        let op = try text(.operator, required: true)
        let typeText = try text(.type, required: true)
        let reference = try text(.reference, required: false)
        let currencyText = try text(.currency, required: false)
        let hasOwnCurrency = currencyText?.isEmpty == false
        let currency = hasOwnCurrency ? currencyText!.uppercased() : self.currency

        let occurredRaw = value(.occurredAt)
        if occurredRaw.isNull { throw reject(.missingField, "occurredAt: required, got NULL") }
        let occurredAt: Instant
        switch instant(occurredRaw) {
        case .success(let v): occurredAt = v
        case .failure(let error): throw reject(Self.reason(error), "occurredAt: \(describe(error, occurredRaw))")
        }
        if occurredAt.seconds > now.seconds + validation.maxFutureSeconds {
            throw reject(.futureTimestamp, "occurredAt: \(occurredAt) is more than \(validation.maxFutureSeconds) s in the future")
        }

        let amount: Amount
        let amountRaw = value(.amount)
        let scale = hasOwnCurrency ? CurrencyScale.scale(of: currency) : currencyScale
        switch amountRaw {
        case .null: throw reject(.missingField, "amount: required, got NULL")
        case .double(let v):
            guard v.isFinite else { throw reject(.invalidAmount, "amount: \(v) is not finite") }
            // FLOAT money: the shortest decimal text that round-trips, rounded half-even to the currency scale.
            guard let parsed = try? Amount(parsing: v.description, scale: scale, rounding: .halfEven) else {
                throw reject(.invalidAmount, "amount: \(v) is out of range")
            }
            amount = parsed
        default:
            let textValue = amountRaw.text ?? ""
            do {
                amount = try Amount(parsing: textValue, scale: scale)
            } catch .tooManyFractionDigits {
                throw reject(.amountScale, "amount: '\(textValue)' has more than \(scale) decimal places for \(currency)")
            } catch {
                throw reject(.invalidAmount, "amount: '\(textValue)' is not a decimal number")
            }
        }

        let typeRaw = typeText!
        let typeKey = typeRaw.lowercased()
        let type = stream.typeMap[typeKey] ?? TransactionType(rawValue: typeKey) ?? .other
        let rule = signRules[type.slot]
        if (rule == .nonNegative && amount.isNegative) || (rule == .nonPositive && amount.minorUnits > 0) {
            throw reject(.signMismatch, "amount: \(amount) breaks the sign rule '\(rule.rawValue)' for type \(type.rawValue)")
        }

        var sourceUpdatedAt: Instant?
        if let index = fieldColumns[StreamConfig.Field.sourceUpdatedAt.slot] {
            let raw = row[index]
            if !raw.isNull {
                switch instant(raw) {
                case .success(let v): sourceUpdatedAt = v
                case .failure(let error): throw reject(Self.reason(error), "sourceUpdatedAt: \(describe(error, raw))")
                }
            }
        } else {
            sourceUpdatedAt = cursorInstant
        }

        let deleted = deletedColumn.map { row[$0].isTruthy } ?? false

        return SaleTransaction(
            sourceId: sourceId, externalId: externalId, pdv: pdv!, operator: op!, amount: amount, currency: currency,
            occurredAt: occurredAt, type: type, typeRaw: typeRaw, reference: (reference?.isEmpty ?? true) ? nil : reference,
            sourceUpdatedAt: sourceUpdatedAt, isDeletedAtSource: deleted)
    }

    /// A source timestamp as an instant: naive values are read in the source's time zone. Every value is
    /// checked (``LocalDateTime/validate()``) before it is converted, whichever driver built it: an instant
    /// must fall in the years 1 ... 9999 (UTC), a naive value must be a real calendar date-time.
    func instant(_ value: SourceValue) -> Result<Instant, LocalDateTime.ParseError> {
        do throws(LocalDateTime.ParseError) {
            switch value {
            case .instant(let v):
                guard Instant.supportedSeconds.contains(v.seconds) else { throw .impossibleDate }
                return .success(v)
            case .localDateTime(let v):
                try v.validate()
                return .success(zone.instant(v))
            case .integer, .decimal, .double, .bool, .null: return .failure(.invalid)
            default:
                guard let text = value.text else { return .failure(.invalid) }
                return .success(zone.instant(try LocalDateTime(parsing: text)))
            }
        } catch {
            return .failure(error)
        }
    }

    /// The quarantine reason of a timestamp that ``instant(_:)`` refused.
    static func reason(_ error: LocalDateTime.ParseError) -> RejectedRow.Reason {
        switch error {
        case .zeroDate: .zeroDate
        case .impossibleDate: .invalidDate
        case .invalid: .invalidTimestamp
        }
    }

    private func describe(_ error: LocalDateTime.ParseError, _ value: SourceValue) -> String {
        let shown = value.jsonValue ?? "NULL"
        switch error {
        case .zeroDate: return "zero date '\(shown)'"
        case .impossibleDate: return "'\(shown)' is not a date of the calendar (no such day, month, time or year)"
        case .invalid: return "'\(shown)' is not a valid date-time"
        }
    }
}

extension StreamConfig.Field {
    /// Position among the fields (declaration order), for per-field tables.
    var slot: Int {
        switch self {
        case .externalId: 0
        case .pdv: 1
        case .operator: 2
        case .amount: 3
        case .currency: 4
        case .occurredAt: 5
        case .type: 6
        case .reference: 7
        case .sourceUpdatedAt: 8
        }
    }
}

extension TransactionType {
    /// Position among the types (declaration order), for per-type tables.
    var slot: Int {
        switch self {
        case .sale: 0
        case .cancel: 1
        case .refund: 2
        case .void: 3
        case .discount: 4
        case .other: 5
        }
    }
}
