public import ArgumentParser
import Attest
import AttestTPM
import Controller
import ControllerClient
import ControllerProtocol
import Foundation
public import Logging
import Policy
import Vault

/// Options every TPM-facing command takes.
struct TPMOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where the TPM is: swtpm:host=H,port=N | device:/dev/tpmrm0 | mssim:host=H,port=N. Default: $VIGIL_TCTI, else device:/dev/tpmrm0.",
            valueName: "tcti"))
    var tcti: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds any TPM command may wait for its answer before the command fails (0: no limit).",
            valueName: "seconds"))
    var tpmTimeout: Int32 = TPM.defaultCommandTimeoutMilliseconds / 1000

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard (0...3600).contains(tpmTimeout) else {
            throw ValidationError("--tpm-timeout must be between 0 and 3600 seconds")
        }
    }

    func open() async throws -> TPM {
        bootstrapLogging(logLevel)
        // libtss2 logs its own errors to stderr; Vigil reports them as one line. TSS2_LOG set by the
        // user wins, and --log-level debug/trace lets libtss2 speak.
        if logLevel > .debug { setenv("TSS2_LOG", "all+none", 0) }
        var logger = Logger(label: "vigil")
        logger.logLevel = logLevel
        let config = try TCTIConfiguration.resolve(tcti)
        return try await TPM.open(config, commandTimeoutMilliseconds: tpmTimeout * 1000, logger: logger)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Logs go to stderr so that stdout carries only the command's output (text or JSON).
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Prints `vigil: <reason>` on one line to stderr and exits 1 for Vigil's own errors, so users see
/// what is wrong without a stack of wrappers.
func reportingErrors<R>(_ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch let error as PolicyError {
        // Already "file:line:column: …".
        FileHandle.standardError.write(Data("\(error.description)\n".utf8))
        throw ExitCode(1)
    } catch {
        FileHandle.standardError.write(Data("vigil: \(reason(of: error))\n".utf8))
        throw ExitCode(1)
    }
}

/// The one-line reason of Vigil's errors (the controller's carry their code: `nonce_used: …`).
func reason(of error: any Error) -> String {
    switch error {
    case let e as TPMError: e.reason
    case let e as AttestError: e.reason
    case let e as VaultError: e.reason
    default: "\(error)"
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints an API value as the controller's JSON (snake_case keys), pretty-printed.
func printAPIJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Reads a file given on the command line, refusing anything over `limit` bytes before reading it.
func readInput(_ path: String, limit: Int) throws -> [UInt8] {
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    guard size <= limit else {
        throw AttestError(code: .sizeLimitExceeded, reason: "\(path): \(size) bytes is over the \(limit)-byte limit")
    }
    do {
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw AttestError(code: .invalidValue, reason: "\(path): cannot read: \(error.localizedDescription)")
    }
}

/// A duration as people write it: 90s, 30m, 1h, 7d (or plain seconds); nil when it is none of those.
func durationSeconds(_ text: String) -> Int? {
    guard let unit = text.last, let n = Int(text.dropLast()), n > 0, n < 1 << 40 else { return Int(text) }
    switch unit {
    case "s": return n
    case "m": return n * 60
    case "h": return n * 3600
    case "d": return n * 86400
    default: return nil
    }
}

/// This process's CPU time so far (user + system), in seconds: the load generators' own share.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
