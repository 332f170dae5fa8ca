import Foundation
import SQLiteNIO
import SyncCore

extension SourceValue {
    /// The SQLite value bound for this source value: timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]` text (the
    /// form SQLite's date functions and text comparison use), decimals as text, booleans as 0/1.
    var sqliteData: SQLiteData {
        switch self {
        case .null: .null
        case .integer(let v): .integer(Int(v))
        case .double(let v): .float(v)
        case .bool(let v): .integer(v ? 1 : 0)
        case .bytes(let v): .blob(ByteBuffer(bytes: v))
        case .decimal(let v), .text(let v): .text(v)
        case .localDateTime(let v): .text(v.description)
        case .instant(let v): .text(v.description)
        }
    }

    /// The source value of an SQLite cell, as stored (SQLite's dynamic typing: INTEGER, REAL, TEXT, BLOB, NULL).
    init(_ data: SQLiteData) {
        switch data {
        case .null: self = .null
        case .integer(let v): self = .integer(Int64(v))
        case .float(let v): self = .double(v)
        case .text(let v): self = .text(v)
        case .blob(var buffer): self = .bytes(Data(buffer.readBytes(length: buffer.readableBytes) ?? []))
        }
    }
}

extension SyncFailure {
    /// Classifies an SQLite error: `SQLITE_BUSY` / `SQLITE_LOCKED` are transient (another writer holds the
    /// database, see https://sqlite.org/rescode.html#busy), a unique violation is `KEY_CONFLICT` (transient: the batch
    /// is planned again with the stored keys), everything else is permanent. Reading a source, SQLite's "no such
    /// table" and "no such column" (both a plain `SQLITE_ERROR`, told apart by their message) are `TABLE_NOT_FOUND` and
    /// `COLUMN_NOT_FOUND`, a configuration error (exit 78) as from the other sources.
    static func sqlite(_ error: any Error, code: SyncFailure.Code, context: String) -> SyncFailure {
        if let failure = error as? SyncFailure { return failure }
        guard let sqliteError = error as? SQLiteError else {
            return SyncFailure(code: code, message: "\(context): \(error)", isTransient: false)
        }
        switch sqliteError.reason {
        case .busy, .locked:
            return SyncFailure(code: code, message: "\(context): database is busy (\(sqliteError.message))", isTransient: true)
        case .constraint where sqliteError.message.hasPrefix("UNIQUE constraint failed"), .constraintPrimaryKeyFailed, .constraintUniqueFailed:
            return SyncFailure(code: .keyConflict, message: "\(context): \(sqliteError.message)", isTransient: true)
        case .error where [.sourceQueryFailed, .sourceUnavailable].contains(code) && sqliteError.message.hasPrefix("no such table"):
            return SyncFailure(code: .tableNotFound, message: "\(context): \(sqliteError.message)", isTransient: false)
        case .error where [.sourceQueryFailed, .sourceUnavailable].contains(code) && sqliteError.message.hasPrefix("no such column"):
            return SyncFailure(code: .columnNotFound, message: "\(context): \(sqliteError.message)", isTransient: false)
        default:
            return SyncFailure(code: code, message: "\(context): \(sqliteError.message)", isTransient: false)
        }
    }
}

/// Opens an SQLite file, failing (instead of creating an empty database) when `mustExist` and it is missing.
func openSQLite(path: String, mustExist: Bool, code: SyncFailure.Code) async throws -> SQLiteConnection {
    if mustExist && !FileManager.default.fileExists(atPath: path) {
        throw SyncFailure(code: code, message: "SQLite database \(path) does not exist", isTransient: false)
    }
    do {
        return try await SQLiteConnection.open(storage: .file(path: path))
    } catch {
        throw SyncFailure.sqlite(error, code: code, context: "cannot open \(path)")
    }
}
