import ArgumentParser
import Controller
import Foundation
import Logging

/// `vigil controller serve`: the fleet's verifier over HTTPS.
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller", abstract: "The Vigil controller: onboarding, attestation, secret release.",
        subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the controller API over TLS.",
            discussion: """
                On first start it creates, in the state folder: the controller CA (ca.pem: what devices and admins \
                pass as --ca), the TLS certificate, the result-signing key (result-signing.pub.pem for relying \
                parties), storage.key, and the bootstrap admin token (admin-token, 0600). It prints the URL and the \
                CA's SHA-256 fingerprint.
                """)

        @Option(help: "State folder (default $VIGIL_STATE_DIR, else /var/lib/vigil/controller).")
        var stateDir: String?
        @Option(help: "Address to listen on, HOST:PORT.") var listen = "127.0.0.1:8443"
        @Option(help: "Database: sqlite:PATH (default: sqlite:STATE/controller.db) or postgres://user@host:port/db.")
        var db: String?
        @Option(help: "Extra DNS name or IPv4 address for the TLS certificate (first start only); repeatable.")
        var tlsName: [String] = []
        @Option(help: "Seconds a nonce may be used.") var nonceLifetime = 60
        @Option(help: "Seconds an attestation result is valid (and secrets released on it).") var resultLifetime = 900
        @Option(help: "Nonces one device may be issued in any 60 s (counted in the database, across instances).")
        var deviceNoncesPerMinute = 60
        @Option(
            help: "Evidence submissions one device may make at once (then refilled at the nonce rate), per instance.")
        var evidenceBurst = 20
        @Option(help: "Requests this instance handles at once; more are answered 503 with Retry-After.")
        var maxInFlight = 256
        @Option(help: "Seconds a request may take, its body included; then 503 request_timeout.")
        var requestDeadline = 60
        @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

        func validate() throws {
            guard (5...3600).contains(nonceLifetime) else { throw ValidationError("--nonce-lifetime: 5 to 3600 s") }
            guard (30...86400).contains(resultLifetime) else {
                throw ValidationError("--result-lifetime: 30 to 86400 s")
            }
            guard Self.hostPort(listen) != nil else { throw ValidationError("--listen must be HOST:PORT") }
        }

        static func hostPort(_ text: String) -> (String, Int)? {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host.isEmpty ? "0.0.0.0" : host, port)
        }

        func run() async throws {
            try await reportingErrors {
                bootstrapLogging(logLevel)
                var logger = Logger(label: "vigil.controller")
                logger.logLevel = logLevel
                let dir =
                    stateDir ?? ProcessInfo.processInfo.environment["VIGIL_STATE_DIR"] ?? "/var/lib/vigil/controller"
                let state = try ControllerState.loadOrCreate(
                    directory: URL(fileURLWithPath: dir), tlsNames: tlsName)
                let backend: any SQLBackend
                let database = db ?? "sqlite:\(dir)/controller.db"
                if database.hasPrefix("sqlite:") {
                    backend = try await SQLiteBackend.open(path: String(database.dropFirst(7)), logger: logger)
                } else if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
                    backend = try await PostgresBackend.open(url: database, logger: logger)
                } else {
                    throw ValidationError("--db must be sqlite:PATH or postgres://user@host:port/database")
                }
                var configuration = Controller.Configuration()
                configuration.nonceLifetime = TimeInterval(nonceLifetime)
                configuration.resultLifetime = TimeInterval(resultLifetime)
                configuration.noncesPerDevicePerMinute = deviceNoncesPerMinute
                configuration.evidenceBurstPerDevice = evidenceBurst
                configuration.maximumInFlight = maxInFlight
                configuration.requestDeadline = TimeInterval(max(1, requestDeadline))
                let metrics = ControllerMetrics()
                let controller = Controller(
                    backend: backend, state: state, configuration: configuration, logger: logger, metrics: metrics)
                let created = try await controller.bootstrap()
                let (host, port) = Self.hostPort(listen) ?? ("127.0.0.1", 8443)
                try await ControllerServer.serve(
                    controller, host: host, port: port, logger: logger, metrics: metrics
                ) { bound in
                    // Written unbuffered: whoever started the controller waits for these lines.
                    let banner = [
                        "vigil controller: https://\(host):\(bound)",
                        "CA: \(dir)/ca.pem  SHA-256 \(state.caFingerprint)",
                        "result-signing key: \(dir)/result-signing.pub.pem",
                        created != nil
                            ? "bootstrap admin token written to \(dir)/admin-token (0600)"
                            : "admin token: \(dir)/admin-token",
                        "database: \(backend.displayName)",
                    ]
                    FileHandle.standardOutput.write(Data((banner.joined(separator: "\n") + "\n").utf8))
                }
                await backend.close()
            }
        }
    }
}
