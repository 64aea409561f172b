import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// PostgreSQL (postgres-nio), for several controller instances over one database. The same schema and
/// statements as SQLite: `?` parameters are rewritten to `$n`, and appends to the audit chain are serialized
/// across instances by a transaction-scoped advisory lock.
public final class PostgresBackend: SQLBackend {
    /// `postgres://user@host:port/db` (never the password).
    public let displayName: String
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// The advisory lock key that serializes the audit chain.
    static let auditLockKey: Int64 = 0x5649_4749_4C41_5544  // "VIGILAUD"

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`) and applies the migrations.
    public static func open(url: String, logger: Logger) async throws(ControllerError) -> PostgresBackend {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, let user = components.user
        else {
            throw .invalid("--db: not a postgres://user@host[:port]/database URL")
        }
        let database = String(components.path.dropFirst())
        let configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? nil : database, tls: try tls(components, host: host))
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let backend = PostgresBackend(
            displayName: "postgres://\(user)@\(host):\(components.port ?? 5432)/\(database)", client: client,
            logger: logger)
        // One instance migrates at a time (each migration step holds the advisory lock, see Schema.migrate).
        try await Schema.migrate(backend)
        return backend
    }

    /// TLS to the database: `sslmode=verify-full` (certificate chain to `sslrootcert=PATH` and host name checked),
    /// `sslmode=disable` (only accepted for a loopback host). A database across a network without TLS would let
    /// anyone on the path read enrollment state and rewrite verdicts, so a non-loopback host without
    /// `sslmode=verify-full` is refused.
    static func tls(_ components: URLComponents, host: String) throws(ControllerError)
        -> PostgresClient.Configuration.TLS
    {
        let items = components.queryItems ?? []
        let mode = items.first { $0.name == "sslmode" }?.value
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "::1"
        switch mode {
        case nil where loopback, "disable" where loopback:
            return .disable
        case "verify-full":
            guard let root = items.first(where: { $0.name == "sslrootcert" })?.value else {
                throw .invalid("--db: sslmode=verify-full needs sslrootcert=PATH (the database server's CA)")
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(root)
            tls.certificateVerification = .fullVerification
            return .require(tls)
        default:
            throw .invalid(
                "--db: a database on \(host) needs sslmode=verify-full&sslrootcert=PATH (plain connections only to a loopback address)"
            )
        }
    }

    private init(displayName: String, client: PostgresClient, logger: Logger) {
        self.displayName = displayName
        self.client = client
        self.logger = logger
        runner = Task { await client.run() }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<T: Sendable>(
        _ body: @Sendable (any SQLTransaction) async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(Transaction(connection: connection, logger: logger))
            }
        } catch let error as ControllerError {
            throw error
        } catch let error as PostgresTransactionError {
            if let closure = error.closureError as? ControllerError { throw closure }
            if let cause = error.beginError ?? error.commitError ?? error.closureError {
                throw Self.failure(cause, logger: logger)
            }
            throw .internalFailure("database: \(String(reflecting: error))")
        } catch {
            throw Self.failure(error, logger: logger)
        }
    }

    /// Serializes appends to the audit chain inside `tx`.
    public func lockAuditChain(_ tx: any SQLTransaction) async throws(ControllerError) {
        try await tx.execute("SELECT pg_advisory_xact_lock(?)", [.integer(Self.auditLockKey)])
    }

    /// Serializes `key` inside `tx` across instances: a transaction-scoped advisory lock on its 64-bit hash (in
    /// its own key space, `hashtextextended` with seed 1, apart from the audit chain's constant key).
    public func lock(_ tx: any SQLTransaction, key: String) async throws(ControllerError) {
        try await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 1))", [.text(key)])
    }

    /// Closes the database connections.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let logger: Logger

        func query(_ sql: String, _ binds: [SQLValue]) async throws(ControllerError) -> [SQLRow] {
            var text = ""
            var n = 0
            for c in sql {
                if c == "?" {
                    n += 1
                    text += "$\(n)"
                } else {
                    text.append(c)
                }
            }
            var bindings = PostgresBindings(capacity: binds.count)
            for b in binds {
                switch b {
                case .text(let s): bindings.append(s)
                case .integer(let i): bindings.append(i)
                case .null: bindings.appendNull()
                }
            }
            do {
                let rows = try await connection.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: logger)
                var out: [SQLRow] = []
                for try await row in rows {
                    var values: [String: SQLValue] = [:]
                    for cell in row {
                        guard cell.bytes != nil else {
                            values[cell.columnName] = .null
                            continue
                        }
                        switch cell.dataType {
                        case .int8, .int4, .int2: values[cell.columnName] = .integer(try cell.decode(Int64.self))
                        case .bool: values[cell.columnName] = .integer(try cell.decode(Bool.self) ? 1 : 0)
                        case .void: values[cell.columnName] = .null
                        default: values[cell.columnName] = .text(try cell.decode(String.self))
                        }
                    }
                    out.append(SQLRow(values))
                }
                return out
            } catch let error as ControllerError {
                throw error
            } catch {
                throw PostgresBackend.failure(error, logger: logger)
            }
        }
    }

    /// A database error as the API answers it: the database unreachable, restarting or shutting down is 503
    /// `database_unavailable` with `Retry-After` (the request may simply be sent again, and the pool reconnects by
    /// itself); anything else is the controller's own 500.
    static func failure(_ error: any Error, logger: Logger) -> ControllerError {
        if let psql = error as? PSQLError {
            let unreachable: Set<PSQLError.Code> = [
                .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
            ]
            let state = psql.serverInfo?[.sqlState] ?? ""
            // 08000/08001/08003/08004/08006 (the connection failed or was refused or lost), 57P01–57P03 (admin
            // shutdown, crash shutdown, cannot connect now): the database is restarting or out of reach.
            let transient: Set<String> = ["08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03"]
            if unreachable.contains(psql.code) || transient.contains(state) {
                logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
                return .unavailable(
                    "database_unavailable", "the controller's database is unreachable; try again shortly",
                    retryAfter: 2)
            }
        }
        return .internalFailure("database: \(String(reflecting: error))")
    }
}
