import Foundation

/// A value bound to or read from SQL. The schema uses only text and 64-bit integers (binary data is base64,
/// times are milliseconds since 1970), so the same statements run on SQLite and PostgreSQL.
public enum SQLValue: Hashable, Sendable {
    /// TEXT.
    case text(String)
    /// BIGINT.
    case integer(Int64)
    /// NULL.
    case null
}

/// One result row, by column name.
public struct SQLRow: Sendable {
    /// Column name → value.
    public let values: [String: SQLValue]

    /// A row.
    public init(_ values: [String: SQLValue]) { self.values = values }

    /// The text in `column`, nil when NULL.
    public func text(_ column: String) throws(ControllerError) -> String? {
        switch values[column] {
        case .text(let s): return s
        case .null: return nil
        case .integer(let i): return String(i)
        case nil: throw .internalFailure("database: no column \(column) in the row")
        }
    }

    /// The text in `column`, which must not be NULL.
    public func requiredText(_ column: String) throws(ControllerError) -> String {
        guard let s = try text(column) else { throw .internalFailure("database: column \(column) is NULL") }
        return s
    }

    /// The integer in `column`, nil when NULL.
    public func integer(_ column: String) throws(ControllerError) -> Int64? {
        switch values[column] {
        case .integer(let i): return i
        case .null: return nil
        case .text(let s):
            guard let i = Int64(s) else { throw .internalFailure("database: column \(column) is not an integer") }
            return i
        case nil: throw .internalFailure("database: no column \(column) in the row")
        }
    }

    /// The integer in `column`, which must not be NULL.
    public func requiredInteger(_ column: String) throws(ControllerError) -> Int64 {
        guard let i = try integer(column) else { throw .internalFailure("database: column \(column) is NULL") }
        return i
    }
}

/// Statements inside one transaction. `?` marks parameters (a backend rewrites them as it needs).
public protocol SQLTransaction: Sendable {
    /// Runs `sql` with `binds` and returns its rows (statements with RETURNING return the affected rows).
    func query(_ sql: String, _ binds: [SQLValue]) async throws(ControllerError) -> [SQLRow]
}

/// A database the controller keeps its state in: SQLite (the embedded default) or PostgreSQL (several
/// controller instances). Each operation of the controller is one transaction: it commits whole or not at all.
public protocol SQLBackend: Sendable {
    /// A name for logs: `sqlite:/path` or `postgres://host/db` (never a password).
    var displayName: String { get }

    /// Runs `body` in a transaction, committed when it returns and rolled back when it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws(ControllerError) -> T)
        async throws(ControllerError) -> T

    /// Serializes appends to the audit chain within a transaction (SQLite: transactions are already serial).
    func lockAuditChain(_ tx: any SQLTransaction) async throws(ControllerError)

    /// Serializes, within a transaction, everything that takes the same `key` (a device's rate count), across
    /// instances (SQLite: transactions are already serial).
    func lock(_ tx: any SQLTransaction, key: String) async throws(ControllerError)

    /// Closes the connections.
    func close() async
}

extension SQLTransaction {
    /// Runs `sql` and returns its first row, if any.
    public func first(_ sql: String, _ binds: [SQLValue]) async throws(ControllerError) -> SQLRow? {
        try await query(sql, binds).first
    }

    /// Runs `sql` for its effect.
    public func execute(_ sql: String, _ binds: [SQLValue] = []) async throws(ControllerError) {
        _ = try await query(sql, binds)
    }
}

extension Date {
    /// Milliseconds since 1970, as the schema stores times.
    var sqlMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }

    /// A time the schema stored.
    init(sqlMilliseconds ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }
}
