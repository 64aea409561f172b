import Foundation
public import Logging
import NIOCore
import SQLiteNIO

/// The embedded default: one SQLite file in the controller's state folder (sqlite-nio, SQLite compiled in).
///
/// One connection; transactions are serialized by ``SerialGate`` and begin `IMMEDIATE`, so two requests never
/// interleave statements. `journal_mode=WAL` with `synchronous=FULL`: a transaction that returned is on disk
/// (fsync of the WAL at each commit) and a process killed mid-transaction leaves nothing of it.
public final class SQLiteBackend: SQLBackend {
    /// `sqlite:PATH`.
    public let displayName: String
    private let connection: SQLiteConnection
    private let gate = SerialGate()

    /// Opens (creating 0600) the database at `path` and applies the schema's migrations.
    public static func open(path: String, logger: Logger) async throws(ControllerError) -> SQLiteBackend {
        // The file holds tokens' hashes, sealed secrets and the audit chain: owner only, from the first byte.
        if !FileManager.default.fileExists(atPath: path) {
            let fd = Foundation.open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw .internalFailure("cannot create the database \(path): \(String(cString: strerror(errno)))")
            }
            _ = Foundation.close(fd)
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"] {
                _ = try await connection.query(pragma, [])
            }
        } catch {
            throw .internalFailure("cannot open the database \(path): \(error)")
        }
        let backend = SQLiteBackend(displayName: "sqlite:\(path)", connection: connection)
        try await Schema.migrate(backend)
        return backend
    }

    private init(displayName: String, connection: SQLiteConnection) {
        self.displayName = displayName
        self.connection = connection
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<T: Sendable>(
        _ body: @Sendable (any SQLTransaction) async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        await gate.acquire()
        let tx = Transaction(connection: connection)
        do {
            try await tx.execute("BEGIN IMMEDIATE")
        } catch {
            await gate.release()
            throw error
        }
        do {
            let result = try await body(tx)
            try await tx.execute("COMMIT")
            await gate.release()
            return result
        } catch {
            await Self.rollback(connection)
            await gate.release()
            throw error
        }
    }

    /// Rolls back outside the caller's task: a request cancelled mid-transaction must not leave the one
    /// connection inside it (every later BEGIN would fail with "cannot start a transaction within a transaction").
    static func rollback(_ connection: SQLiteConnection) async {
        await Task.detached {
            _ = try? await Transaction(connection: connection).execute("ROLLBACK")
        }.value
    }

    /// Serializes appends to the audit chain inside `tx`.
    public func lockAuditChain(_ tx: any SQLTransaction) async throws(ControllerError) {
        // BEGIN IMMEDIATE already holds the database's write lock.
    }

    /// Closes the database connections.
    public func close() async {
        try? await connection.close()
    }

    struct Transaction: SQLTransaction {
        let connection: SQLiteConnection

        func query(_ sql: String, _ binds: [SQLValue]) async throws(ControllerError) -> [SQLRow] {
            let data: [SQLiteData] = binds.map {
                switch $0 {
                case .text(let s): .text(s)
                case .integer(let i): .integer(Int(i))
                case .null: .null
                }
            }
            let rows: [SQLiteRow]
            do {
                rows = try await connection.query(sql, data)
            } catch {
                throw ControllerError.internalFailure("database: \(error)")
            }
            return rows.map { row in
                var values: [String: SQLValue] = [:]
                for column in row.columns {
                    switch column.data {
                    case .integer(let i): values[column.name] = .integer(Int64(i))
                    case .text(let s): values[column.name] = .text(s)
                    case .float(let d): values[column.name] = .integer(Int64(d))
                    case .null, .blob: values[column.name] = .null
                    }
                }
                return SQLRow(values)
            }
        }
    }
}

/// A FIFO async mutex: one holder at a time, waiters resumed in arrival order.
actor SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}
