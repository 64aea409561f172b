import Dispatch
import Foundation
public import Logging
import Synchronization

/// The embedded default: one SQLite file in the controller's state folder (Debian's libsqlite3, see
/// ``SQLiteDatabase``).
///
/// One connection; transactions are serialized by ``SerialGate`` and begin `IMMEDIATE`, so two requests never
/// interleave statements, and under load several share one commit (see ``transaction(_:)``). Statements run on the
/// caller's thread, so the gate is held for microseconds per statement, not for thread switches; only the commit
/// (an fsync) runs on a thread of its own. `journal_mode=WAL` with `synchronous=FULL`: a transaction that returned
/// is on disk (fsync of the WAL at each commit) and a process killed mid-transaction leaves nothing of it.
public final class SQLiteBackend: SQLBackend {
    /// `sqlite:PATH`.
    public let displayName: String
    private let connection: SQLiteDatabase
    private let gate = SerialGate()
    /// Where commits wait for their fsync, off the concurrency pool's few threads.
    private static let committer = DispatchQueue(label: "vigil.sqlite.commit")

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
        let connection = try SQLiteDatabase(path: path)
        do throws(ControllerError) {
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"] {
                _ = try connection.query(pragma, [])
            }
        } catch {
            connection.close()
            throw .internalFailure("cannot open the database \(path): \(error)")
        }
        let backend = SQLiteBackend(displayName: "sqlite:\(path)", connection: connection)
        try await Schema.migrate(backend)
        return backend
    }

    private init(displayName: String, connection: SQLiteDatabase) {
        self.displayName = displayName
        self.connection = connection
    }

    /// The most transactions one commit (one fsync) carries.
    static let maximumBatch = 32

    /// Transactions sharing the open database transaction, waiting for its commit.
    private struct Batch {
        var open = false
        var count = 0
        var members: [CheckedContinuation<Result<Void, ControllerError>, Never>] = []
    }
    private let batch = Mutex(Batch())

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws; it returns only once
    /// its changes are on disk.
    ///
    /// Group commit: while other transactions wait at the gate, a finished one does not commit on its own but lets
    /// the next run inside the same database transaction (each after the first in its own `SAVEPOINT`, so one that
    /// throws undoes only its own changes; the first is alone in the transaction until it finishes, so its failure
    /// rolls back the whole, which is only its own), and the last of up to ``maximumBatch`` commits for all of them:
    /// one fsync for many attestations under load, no statement added when there is no queue. Nobody is told of
    /// success before the commit, and a failed commit fails every member.
    public func transaction<T: Sendable>(
        _ body: @Sendable (any SQLTransaction) async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        await gate.acquire()
        let tx = Transaction(connection: connection)
        let opening = batch.withLock { b -> Bool in
            guard !b.open else { return false }
            b.open = true
            b.count = 0
            return true
        }
        // The batch's own statements are not the request's: a cancelled request still leaves the batch as it found
        // it (its SAVEPOINT released or rolled back), so the other members are not affected.
        do throws(ControllerError) {
            _ = try connection.query(opening ? "BEGIN IMMEDIATE" : "SAVEPOINT vigil_tx", [])
        } catch {
            await finishBatch(committing: false)
            throw error
        }
        let result: T
        do {
            result = try await body(tx)
            if !opening { _ = try connection.query("RELEASE vigil_tx", []) }
        } catch {
            // Only this transaction's changes go; the batch carries on (or, if even that fails, ends, failing all).
            // A failed member counts towards the batch's size too, so failures cannot keep a batch open.
            batch.withLock { $0.count += 1 }
            if opening {
                await finishBatch(committing: false)  // the transaction holds nothing but this member's changes
            } else if Self.rollbackSavepoint(connection) {
                await leaveBatch()
            } else {
                await finishBatch(committing: false)
            }
            throw error
        }
        batch.withLock { $0.count += 1 }
        switch await leaveBatch() {
        case .success: return result
        case .failure(let error): throw error
        }
    }

    /// The gate holder is done with its part: it passes the open transaction to the next waiter and waits for the
    /// commit, or, with nobody waiting or the batch full, commits for everyone.
    @discardableResult
    private func leaveBatch() async -> Result<Void, ControllerError> {
        let full = batch.withLock { $0.count >= Self.maximumBatch }
        if !full, gate.hasWaiters {
            return await withCheckedContinuation { continuation in
                batch.withLock { $0.members.append(continuation) }
                gate.release()
            }
        }
        return await finishBatch(committing: true)
    }

    /// Commits (or rolls back) the open transaction, tells every waiting member, and opens the gate.
    @discardableResult
    private func finishBatch(committing: Bool) async -> Result<Void, ControllerError> {
        var outcome: Result<Void, ControllerError> = .failure(
            .internalFailure("database: the transaction batch was rolled back"))
        if committing {
            outcome = await commit()
            if case .failure = outcome { Self.rollback(connection) }
        } else {
            Self.rollback(connection)
        }
        let members = batch.withLock { b in
            defer { b = Batch() }
            return b.members
        }
        gate.release()
        for member in members { member.resume(returning: outcome) }
        return outcome
    }

    /// `COMMIT` on ``committer``: its fsync takes milliseconds, which the concurrency pool's threads should spend on
    /// requests. Not cancellable: a commit that started finishes, and its members learn how it went.
    private func commit() async -> Result<Void, ControllerError> {
        let connection = self.connection
        return await withCheckedContinuation { continuation in
            Self.committer.async {
                do throws(ControllerError) {
                    _ = try connection.query("COMMIT", [])
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }

    /// Undoes one member's changes; false if that failed. Synchronous, so a cancelled request cannot leave it
    /// half done.
    static func rollbackSavepoint(_ connection: SQLiteDatabase) -> Bool {
        do throws(ControllerError) {
            _ = try connection.query("ROLLBACK TO vigil_tx", [])
            _ = try connection.query("RELEASE vigil_tx", [])
            return true
        } catch {
            return false
        }
    }

    /// Rolls back the open transaction, if any: a request that failed mid-transaction must not leave the one
    /// connection inside it (every later BEGIN would fail with "cannot start a transaction within a transaction").
    static func rollback(_ connection: SQLiteDatabase) {
        _ = try? connection.query("ROLLBACK", [])
    }

    /// Serializes appends to the audit chain inside `tx`.
    public func lockAuditChain(_ tx: any SQLTransaction) async throws(ControllerError) {
        // BEGIN IMMEDIATE already holds the database's write lock.
    }

    /// Serializes `key` inside `tx`.
    public func lock(_ tx: any SQLTransaction, key: String) async throws(ControllerError) {
        // BEGIN IMMEDIATE already holds the database's write lock.
    }

    /// Closes the database connection.
    public func close() async {
        connection.close()
    }

    /// Statements of the gate holder's transaction: each runs on the caller's thread (no suspension). A request
    /// cancelled (its client gone, its deadline passed) runs no further statement: its transaction rolls back.
    struct Transaction: SQLTransaction {
        let connection: SQLiteDatabase

        func query(_ sql: String, _ binds: [SQLValue]) async throws(ControllerError) -> [SQLRow] {
            guard !Task.isCancelled else {
                throw .internalFailure("database: the request was cancelled before its transaction finished")
            }
            return try connection.query(sql, binds)
        }
    }
}

/// A FIFO async mutex: one holder at a time, waiters resumed in arrival order; whether anyone waits is known
/// synchronously (group commit asks).
final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard s.busy else {
                    s.busy = true
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.waiters.isEmpty else {
                s.busy = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    var hasWaiters: Bool { state.withLock { !$0.waiters.isEmpty } }
}
