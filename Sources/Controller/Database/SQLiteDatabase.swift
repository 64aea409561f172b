import CSQLite3
import Foundation
import Synchronization

/// One connection to an SQLite database file through Debian's libsqlite3, whose statements run synchronously on the
/// calling thread.
///
/// Why not sqlite-nio: it runs every statement on a thread pool and resumes the caller through an event loop, three
/// thread switches per statement. Under load those switches were a third of the controller's CPU time, and because
/// the database's one writer waits through each of them while holding the write lock, they set the ceiling on
/// attestations per second (BENCHMARKS.md, issue 12). A statement here takes microseconds and runs where it is
/// called; only the commit's fsync, which takes milliseconds, leaves the caller's thread (``SQLiteBackend``).
/// Statements are prepared once per SQL text and kept (`sqlite3_prepare_v3` with `SQLITE_PREPARE_PERSISTENT`).
final class SQLiteDatabase: Sendable {
    /// Prepared statements by SQL text; every use of the connection happens inside this lock.
    private let state: Mutex<State>

    private struct State: ~Copyable {
        let handle: OpaquePointer
        var statements: [String: OpaquePointer] = [:]
        var closed = false
    }

    /// Statements kept prepared at most (the controller has a few dozen distinct ones); beyond it a statement is
    /// finalized after use.
    static let maximumCachedStatements = 512

    /// Opens `path` (read-write, created if missing) with a 5 s busy timeout for another process's lock.
    init(path: String) throws(ControllerError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let handle { sqlite3_close_v2(handle) }
            throw .internalFailure("cannot open the database \(path): \(message)")
        }
        sqlite3_busy_timeout(handle, 5000)
        sqlite3_extended_result_codes(handle, 1)
        state = Mutex(State(handle: handle))
    }

    /// Runs one statement with `binds` for its `?` parameters and returns its rows.
    func query(_ sql: String, _ binds: [SQLValue]) throws(ControllerError) -> [SQLRow] {
        try state.withLock { (state: inout State) throws(ControllerError) -> [SQLRow] in
            guard !state.closed else { throw .internalFailure("database: the connection is closed") }
            let statement = try Self.prepared(sql, in: &state)
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
                if state.statements[sql] == nil { sqlite3_finalize(statement) }
            }
            let handle = state.handle
            guard Int(sqlite3_bind_parameter_count(statement)) == binds.count else {
                throw .internalFailure(
                    "database: \(binds.count) values for \(sqlite3_bind_parameter_count(statement)) parameters in \(sql)"
                )
            }
            for (offset, value) in binds.enumerated() {
                let index = Int32(offset + 1)
                let rc: Int32
                switch value {
                case .integer(let i): rc = sqlite3_bind_int64(statement, index, i)
                case .null: rc = sqlite3_bind_null(statement, index)
                case .text(var s):
                    rc = s.withUTF8 { bytes in
                        // An empty buffer may have no address, which SQLite would bind as NULL.
                        guard let base = bytes.baseAddress, !bytes.isEmpty else {
                            return sqlite3_bind_text(statement, index, "", 0, vigil_sqlite_transient())
                        }
                        guard let length = Int32(exactly: bytes.count) else { return SQLITE_TOOBIG }
                        return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                            sqlite3_bind_text(statement, index, $0, length, vigil_sqlite_transient())
                        }
                    }
                }
                guard rc == SQLITE_OK else { throw Self.failure(handle, rc, sql) }
            }
            let columns = sqlite3_column_count(statement)
            var names: [String] = []
            names.reserveCapacity(Int(columns))
            for column in 0..<columns {
                names.append(sqlite3_column_name(statement, column).map { String(cString: $0) } ?? "")
            }
            var rows: [SQLRow] = []
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else { throw Self.failure(handle, rc, sql) }
                var values: [String: SQLValue] = [:]
                values.reserveCapacity(names.count)
                for column in 0..<columns {
                    let name = names[Int(column)]
                    switch sqlite3_column_type(statement, column) {
                    case SQLITE_INTEGER:
                        values[name] = .integer(sqlite3_column_int64(statement, column))
                    case SQLITE_TEXT:
                        let count = Int(sqlite3_column_bytes(statement, column))
                        if let text = sqlite3_column_text(statement, column) {
                            values[name] = .text(
                                String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
                        } else {
                            values[name] = .text("")
                        }
                    case SQLITE_NULL:
                        values[name] = .null
                    case SQLITE_FLOAT:
                        // The schema stores no floating point; an aggregate over integers may still come back as one.
                        let d = sqlite3_column_double(statement, column)
                        guard let i = Int64(exactly: d.rounded(.towardZero)) else {
                            throw .internalFailure("database: column \(name) holds \(d), not an integer")
                        }
                        values[name] = .integer(i)
                    default:
                        throw .internalFailure("database: column \(name) holds a blob, which the schema never stores")
                    }
                }
                rows.append(SQLRow(values))
            }
            return rows
        }
    }

    /// The prepared statement for `sql`, from the cache or newly prepared (and cached while there is room).
    private static func prepared(_ sql: String, in state: inout State) throws(ControllerError) -> OpaquePointer {
        if let statement = state.statements[sql] { return statement }
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let persistent = state.statements.count < maximumCachedStatements
        let rc = sql.withCString {
            sqlite3_prepare_v3(
                state.handle, $0, -1, persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &statement, &tail)
        }
        guard rc == SQLITE_OK, let statement else { throw failure(state.handle, rc, sql) }
        // One statement per call: a second one after a `;` would otherwise be silently ignored.
        if let tail, !String(cString: tail).allSatisfy({ $0.isWhitespace || $0 == ";" }) {
            sqlite3_finalize(statement)
            throw .internalFailure("database: more than one statement in \(sql)")
        }
        if persistent { state.statements[sql] = statement }
        return statement
    }

    private static func failure(_ handle: OpaquePointer, _ rc: Int32, _ sql: String) -> ControllerError {
        .internalFailure("database: \(String(cString: sqlite3_errmsg(handle))) (SQLite \(rc)) in \(sql)")
    }

    /// Finalizes every statement and closes the connection; later queries fail.
    func close() {
        state.withLock { state in
            guard !state.closed else { return }
            for statement in state.statements.values { sqlite3_finalize(statement) }
            state.statements = [:]
            state.closed = true
            sqlite3_close_v2(state.handle)
        }
    }

    deinit { close() }
}
