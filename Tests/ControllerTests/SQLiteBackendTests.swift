import Controller
import Foundation
import Logging
import ProcessSupport
import Testing

/// The SQLite backend's own statement layer (Debian's libsqlite3, statements on the caller's thread, prepared once):
/// values come back as they went in, and SQL it would silently cut short is refused.
struct SQLiteBackendTests {
    static func open() async throws -> (SQLiteBackend, URL) {
        let directory = try ProcessRunner.temporaryDirectory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let db = try await SQLiteBackend.open(path: directory.appendingPathComponent("c.db").path, logger: logger)
        try await db.transaction { tx throws(ControllerError) in
            try await tx.execute("CREATE TABLE t (k BIGINT PRIMARY KEY, s TEXT, i BIGINT)")
        }
        return (db, directory)
    }

    @Test func valuesRoundTripExactly() async throws {
        let (db, directory) = try await Self.open()
        defer { try? FileManager.default.removeItem(at: directory) }
        // An empty string is not NULL; a NUL inside a string does not end it; the extremes of 64 bits survive.
        let cases: [(SQLValue, SQLValue)] = [
            (.text(""), .integer(0)), (.null, .null), (.text("a\u{0}b"), .integer(Int64.max)),
            (.text("ü𝄞 <script>"), .integer(Int64.min)), (.text(String(repeating: "x", count: 100_000)), .integer(-1)),
        ]
        for (k, (s, i)) in cases.enumerated() {
            let rows = try await db.transaction { tx throws(ControllerError) in
                try await tx.execute("INSERT INTO t (k, s, i) VALUES (?, ?, ?)", [.integer(Int64(k)), s, i])
                return try await tx.query("SELECT s, i FROM t WHERE k = ?", [.integer(Int64(k))])
            }
            #expect(rows.count == 1)
            #expect(rows.first?.values["s"] == s, "case \(k)")
            #expect(rows.first?.values["i"] == i, "case \(k)")
        }
        // The same prepared statement, reused with other values, does not keep the last ones.
        let again = try await db.transaction { tx throws(ControllerError) in
            try await tx.query("SELECT s, i FROM t WHERE k = ?", [.integer(0)])
        }
        #expect(again.first?.values["s"] == .text(""))
        // After a reopen, everything committed is there.
        await db.close()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let reopened = try await SQLiteBackend.open(
            path: directory.appendingPathComponent("c.db").path, logger: logger)
        let count = try await reopened.transaction { tx throws(ControllerError) in
            try await tx.first("SELECT COUNT(*) AS n FROM t", [])?.requiredInteger("n")
        }
        #expect(count == Int64(cases.count))
        await reopened.close()
    }

    @Test func aSecondStatementOrAMissingValueIsRefusedNotIgnored() async throws {
        let (db, directory) = try await Self.open()
        defer { try? FileManager.default.removeItem(at: directory) }
        await #expect(throws: ControllerError.self) {
            try await db.transaction { tx throws(ControllerError) in
                try await tx.execute("INSERT INTO t (k, s, i) VALUES (1, 'a', 1); DROP TABLE t")
            }
        }
        await #expect(throws: ControllerError.self) {
            try await db.transaction { tx throws(ControllerError) in
                try await tx.execute("INSERT INTO t (k, s, i) VALUES (?, ?, ?)", [.integer(2), .text("b")])
            }
        }
        // Neither left anything behind, and the connection still works.
        let rows = try await db.transaction { tx throws(ControllerError) in
            try await tx.query("SELECT k FROM t", [])
        }
        #expect(rows.isEmpty)
        await db.close()
    }
}
