// PostgreSQL's binary value forms (each type's `typsend` / `typreceive`, src/backend/utils/adt/): the fields of
// the destination's batch array parameters and binary `COPY` rows, and the `numeric` decoder of the source.
import NIOCore
import PostgresNIO
import SyncCore

/// `timestamp` / `timestamptz` parameters in PostgreSQL's binary form (microseconds since 2000-01-01), so
/// naive values are compared as naive values: never shifted by the session's `TimeZone`.
struct PostgresTimestamp: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable {
    static let epochOffset: Int64 = 946_684_800
    var microseconds: Int64
    var zoned: Bool

    static var psqlType: PostgresDataType { .timestamp }
    static var psqlFormat: PostgresFormat { .binary }
    var psqlType: PostgresDataType { zoned ? .timestamptz : .timestamp }
    var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeInteger(microseconds)
    }
}

extension PostgresTimestamp {
    /// The binary form of an instant (`timestamptz`).
    init(_ instant: Instant) {
        self.init(microseconds: (instant.seconds - Self.epochOffset) * 1_000_000 + Int64(instant.microsecond), zoned: true)
    }
}

/// Writes values as length-prefixed fields of PostgreSQL's binary forms — an `int32` byte count (-1 for NULL),
/// then the value's `typsend` bytes: the layout of an array element (`array_recv`) and of a column of a binary
/// `COPY` row (PostgreSQL documentation, "COPY", "Binary Format") — at a raw pointer into room reserved for them
/// (``NIOCore/ByteBuffer/writePostgresFields(bound:_:)``). A row is one reservation instead of one bounds and
/// uniqueness check of the buffer per integer, which `perf` put at a tenth of our CPU in a first load. Every write
/// checks the reserved room (a trap, never a write past it).
struct PostgresFieldWriter {
    /// The most bytes a field of each kind takes, length included.
    static let instantBound = 12, boolBound = 5, amountBound = 4 + 8 + 2 * 11
    /// The bytes of a text field, length included.
    static func bound(_ text: String?) -> Int { 4 + (text?.utf8.count ?? 0) }

    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// Bytes written so far.
    private(set) var count = 0

    fileprivate init(_ room: UnsafeMutableRawBufferPointer) {
        base = room.baseAddress!
        capacity = room.count
    }

    /// An integer in network byte order (no length: a `COPY` row's column count, a `numeric`'s header).
    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        precondition(count + MemoryLayout<T>.size <= capacity, "a PostgreSQL field written past its reserved room")
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// A NULL field.
    mutating func null() {
        integer(Int32(-1))
    }

    /// Text as its UTF-8 bytes (`textsend`; `varchar` and `bpchar` read the same bytes); NULL for `nil`.
    mutating func text(_ text: String?) {
        guard var text else { return null() }
        text.withUTF8 { bytes in
            integer(Int32(bytes.count))
            guard let start = bytes.baseAddress else { return }
            precondition(count + bytes.count <= capacity, "a PostgreSQL field written past its reserved room")
            (base + count).copyMemory(from: start, byteCount: bytes.count)
            count += bytes.count
        }
    }

    /// An instant as `timestamptz` (``PostgresTimestamp``); NULL for `nil`.
    mutating func instant(_ instant: Instant?) {
        guard let instant else { return null() }
        integer(Int32(8))
        integer(PostgresTimestamp(instant).microseconds)
    }

    /// A boolean (`boolsend`: one byte, 1 or 0).
    mutating func bool(_ value: Bool) {
        integer(Int32(1))
        integer(UInt8(value ? 1 : 0))
    }

    /// An amount as `numeric` (``BinaryNumeric/write(_:to:)``).
    mutating func amount(_ amount: Amount) {
        let lengthOffset = count
        integer(Int32(0))
        BinaryNumeric.write(amount, to: &self)
        base.storeBytes(of: Int32(count - lengthOffset - 4).bigEndian, toByteOffset: lengthOffset, as: Int32.self)
    }
}

extension ByteBuffer {
    /// Appends the fields `body` writes into at most `bound` bytes (the sum of ``PostgresFieldWriter``'s bounds of
    /// the fields, plus any bare integers).
    mutating func writePostgresFields(bound: Int, _ body: (inout PostgresFieldWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { room in
            var writer = PostgresFieldWriter(UnsafeMutableRawBufferPointer(rebasing: room.prefix(bound)))
            body(&writer)
            return writer.count
        }
    }
}

/// A one-dimensional array parameter built element by element straight into PostgreSQL's binary array form
/// (`array_recv` in src/backend/utils/adt/arrayfuncs.c: dimensions, flags, element type, then each element
/// as a length-prefixed field, ``PostgresFieldWriter``), so a batch's column goes to the server without an
/// intermediate `[String]` or a text round trip for timestamps.
struct PostgresArrayColumn: PostgresDynamicTypeEncodable, Sendable {
    /// The element types a batch column can hold.
    enum Element: Sendable {
        case text, timestamptz, bool

        var oid: PostgresDataType {
            switch self {
            case .text: .text
            case .timestamptz: .timestamptz
            case .bool: .bool
            }
        }

        var arrayOid: PostgresDataType {
            switch self {
            case .text: .textArray
            case .timestamptz: .timestamptzArray
            case .bool: .boolArray
            }
        }
    }

    let element: Element
    private(set) var count = 0
    private var hasNull = false
    private var elements: ByteBuffer

    /// An empty column with room for `capacity` elements of about 16 bytes.
    init(_ element: Element, capacity: Int) {
        self.element = element
        elements = ByteBufferAllocator().buffer(capacity: capacity * 16)
    }

    var psqlType: PostgresDataType { element.arrayOid }
    var psqlFormat: PostgresFormat { .binary }

    /// Appends text (NULL for `nil`); only for `.text` columns.
    mutating func append(_ value: String?) {
        precondition(element == .text, "text appended to a \(element) column")
        elements.writePostgresFields(bound: PostgresFieldWriter.bound(value)) { $0.text(value) }
        note(isNull: value == nil)
    }

    /// Appends an instant (NULL for `nil`); only for `.timestamptz` columns.
    mutating func append(_ value: Instant?) {
        precondition(element == .timestamptz, "an instant appended to a \(element) column")
        elements.writePostgresFields(bound: PostgresFieldWriter.instantBound) { $0.instant(value) }
        note(isNull: value == nil)
    }

    /// Appends a boolean; only for `.bool` columns.
    mutating func append(_ value: Bool) {
        precondition(element == .bool, "a boolean appended to a \(element) column")
        elements.writePostgresFields(bound: PostgresFieldWriter.boolBound) { $0.bool(value) }
        note(isNull: false)
    }

    private mutating func note(isNull: Bool) {
        hasNull = hasNull || isNull
        count += 1
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeInteger(Int32(count == 0 ? 0 : 1))  // dimensions
        byteBuffer.writeInteger(Int32(hasNull ? 1 : 0))
        byteBuffer.writeInteger(element.oid.rawValue)
        guard count > 0 else { return }
        byteBuffer.writeInteger(Int32(count))  // length of the dimension
        byteBuffer.writeInteger(Int32(1))  // lower bound
        byteBuffer.writeImmutableBuffer(elements)
    }
}

/// Reads PostgreSQL's binary forms from raw bytes: integers in network byte order and length-prefixed fields, each
/// read checked against the end (`nil` when the value is cut short). Hostile-input code: nothing a server sends traps.
struct PostgresBinaryReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Whether every byte has been read.
    var isAtEnd: Bool { offset == bytes.count }

    /// The next integer, or `nil` when fewer bytes are left.
    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard bytes.count - offset >= MemoryLayout<T>.size else { return nil }
        defer { offset += MemoryLayout<T>.size }
        return T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The next `count` bytes, or `nil` when fewer are left (or `count` is negative).
    mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    /// The next length-prefixed field (an `int32` byte count, -1 for NULL): `.some(nil)` for NULL, `nil` when cut
    /// short or the length is below -1.
    mutating func field() -> UnsafeRawBufferPointer?? {
        guard let length = integer(Int32.self), length >= -1 else { return nil }
        if length == -1 { return .some(nil) }
        return bytes(Int(length)).map { .some($0) }
    }
}

/// A one-dimensional array in PostgreSQL's binary form (`array_send`, src/backend/utils/adt/arrayfuncs.c: dimension
/// count, has-NULL flag, element type OID, then each dimension's length and lower bound, then each element as a
/// length-prefixed field): the form a page's column takes when ``PostgresSource`` reads it as one array per column.
enum PostgresArray {
    /// Decodes the elements of `bytes` (none for an empty array, which has no dimension), each by the element type
    /// after `baseType` (a domain's base type), passing each to `body` in order; `false` for bytes that are not such
    /// an array (more than one dimension, cut short, or bytes left over).
    static func forEachElement(_ bytes: UnsafeRawBufferPointer, baseType: (UInt32) -> PostgresDataType,
                               _ body: (SourceValue) -> Void) -> Bool {
        var reader = PostgresBinaryReader(bytes)
        guard let dimensions = reader.integer(Int32.self), reader.integer(Int32.self) != nil, let element = reader.integer(UInt32.self) else {
            return false
        }
        if dimensions == 0 { return reader.isAtEnd }
        guard dimensions == 1, let count = reader.integer(Int32.self), count >= 0, reader.integer(Int32.self) != nil else { return false }
        let type = baseType(element)
        for _ in 0..<count {
            guard let field = reader.field() else { return false }
            body(field.map { SourceValue(postgres: type, binary: $0) } ?? .null)
        }
        return reader.isAtEnd
    }

    /// The element type OID of `bytes`, or `nil` when the header is cut short.
    static func elementType(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        var reader = PostgresBinaryReader(bytes)
        guard reader.integer(Int32.self) != nil, reader.integer(Int32.self) != nil else { return nil }
        return reader.integer(UInt32.self)
    }
}

/// PostgreSQL's binary `numeric`: ndigits, weight, sign, dscale (`int16` each), then `ndigits` base-10000 digits,
/// most significant first; the value is the sum of digit i × 10000^(weight − i) (src/backend/utils/adt/numeric.c,
/// `numeric_send` / `numeric_recv`).
enum BinaryNumeric {
    /// The value as PostgreSQL prints it (`numeric_out`: the integer part without leading zeros, exactly `dscale`
    /// fraction digits), written in one pass; `nil` for a value cut short or with a digit group outside 0 ... 9999.
    static func text(_ reader: inout PostgresBinaryReader) -> String? {
        guard let ndigits = reader.integer(Int16.self), let weight16 = reader.integer(Int16.self),
              let sign = reader.integer(UInt16.self), let dscale = reader.integer(Int16.self) else { return nil }
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        default: break
        }
        let count = max(0, Int(ndigits)), weight = Int(weight16), scale = max(0, Int(dscale))
        guard let digits = reader.bytes(2 * count) else { return nil }
        for index in 0..<count where !(0...9999).contains(Int16(bigEndian: digits.loadUnaligned(fromByteOffset: 2 * index, as: Int16.self))) {
            return nil
        }
        func group(_ index: Int) -> Int {
            index >= 0 && index < count ? Int(Int16(bigEndian: digits.loadUnaligned(fromByteOffset: 2 * index, as: Int16.self))) : 0
        }
        // Integer part: groups 0 ... weight (the first without leading zeros), or `0`; fraction: the groups after
        // it (zero groups first when weight < -1), cut to `dscale` digits.
        return String(unsafeUninitializedCapacity: 2 + 4 * max(1, weight + 1) + scale) { out in
            // Written through an index local to this closure (a counter captured by a nested function costs a
            // dynamic exclusivity check per byte).
            var length = 0
            if sign == 0x4000 {
                out[length] = UInt8(ascii: "-")
                length += 1
            }
            if weight >= 0 {
                var first = group(0), divisor = 1000
                while divisor > 1 && first / divisor == 0 { divisor /= 10 }
                while divisor > 0 {
                    out[length] = UInt8(48 + first / divisor)
                    length += 1
                    first %= divisor
                    divisor /= 10
                }
                for index in stride(from: 1, through: weight, by: 1) {
                    let value = group(index)
                    var divisor = 1000
                    while divisor > 0 {
                        out[length] = UInt8(48 + value / divisor % 10)
                        length += 1
                        divisor /= 10
                    }
                }
            } else {
                out[length] = UInt8(ascii: "0")
                length += 1
            }
            if scale > 0 {
                out[length] = UInt8(ascii: ".")
                length += 1
                var written = 0, index = weight + 1
                while written < scale {
                    let value = group(index)
                    var divisor = 1000
                    while divisor > 0 && written < scale {
                        out[length] = UInt8(48 + value / divisor % 10)
                        length += 1
                        written += 1
                        divisor /= 10
                    }
                    index += 1
                }
            }
            return length
        }
    }

    /// Writes `amount` (without a field length) exactly as `numeric_send` writes the same value read from its
    /// text at display scale `amount.scale`: no leading or trailing zero digits, zero as no digits with weight 0,
    /// so the stored value and its text (`12.50` keeps two fraction digits) are those of a text `COPY`.
    static func write(_ amount: Amount, to writer: inout PostgresFieldWriter) {
        let magnitude = amount.minorUnits.magnitude
        if let small = UInt64(exactly: magnitude) {
            write(magnitude: small, isNegative: amount.minorUnits < 0, scale: amount.scale, to: &writer)
        } else {
            write(magnitude: magnitude, isNegative: amount.minorUnits < 0, scale: amount.scale, to: &writer)
        }
    }

    /// The digits are cut at the decimal point: minor units × 10^pad (pad = the zeros that fill the last fraction
    /// group) is split as (units / 10^(4 − pad)) × 10000 + (units mod 10^(4 − pad)) × 10^pad, so no product can
    /// overflow; group i (least significant first) then weighs 10000^(i − fraction groups).
    private static func write<Magnitude: UnsignedInteger & FixedWidthInteger>(magnitude: Magnitude, isNegative: Bool, scale: Int,
                                                                               to writer: inout PostgresFieldWriter) {
        precondition(scale >= 0, "a negative scale")
        let fractionGroups = (scale + 3) / 4, pad = (4 - scale % 4) % 4
        let padFactor = [1, 10, 100, 1000][pad]
        // At most 11 groups: 39 digits of an Int128 plus 3 of padding.
        var groups = SIMD16<Int16>(), count = 1
        groups[0] = Int16(truncatingIfNeeded: magnitude % Magnitude(10_000 / padFactor)) * Int16(padFactor)
        var rest = magnitude / Magnitude(10_000 / padFactor)
        while rest > 0 {
            groups[count] = Int16(truncatingIfNeeded: rest % 10_000)
            rest /= 10_000
            count += 1
        }
        var top = count - 1, bottom = 0
        while top >= 0 && groups[top] == 0 { top -= 1 }
        while bottom < top && groups[bottom] == 0 { bottom += 1 }
        let digits = max(0, top - bottom + 1)
        writer.integer(Int16(digits))
        writer.integer(Int16(digits == 0 ? 0 : top - fractionGroups))
        writer.integer(UInt16(isNegative && digits > 0 ? 0x4000 : 0))
        writer.integer(Int16(scale))
        for index in stride(from: top, through: bottom, by: -1) {  // none for zero (top is -1)
            writer.integer(groups[index])
        }
    }
}
