import Controller
import Foundation
import Logging
import PostgresNIO

/// A fresh database per test on the private PostgreSQL cluster `scripts/test.sh` starts (`pg_ctl` in a temp
/// folder, as the postgres user): `VIGIL_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT`.
enum PostgresTestDatabase {
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    static func open(logger: Logger) async throws -> PostgresBackend {
        try await PostgresBackend.open(url: try await create(logger: logger), logger: logger)
    }

    /// Creates a fresh database on the test cluster and returns its URL (for several instances to open).
    static func create(base: String? = nil, logger: Logger) async throws -> String {
        guard let base = base ?? ProcessInfo.processInfo.environment["VIGIL_TEST_POSTGRES"],
            let components = URLComponents(string: base), let host = components.host, let user = components.user
        else {
            throw Unavailable(
                description:
                    "VIGIL_TEST_POSTGRES is not set: run the tests with scripts/test.sh, which starts a private PostgreSQL (required with CI=true)"
            )
        }
        let name = "vigil_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        let client = PostgresClient(
            configuration: .init(
                host: host, port: components.port ?? 5432, username: user, password: components.password,
                database: "postgres", tls: .disable),
            backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
            group.cancelAll()
        }
        return "postgres://\(user)@\(host):\(components.port ?? 5432)/\(name)"
    }
}
