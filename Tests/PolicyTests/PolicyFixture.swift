import Attest
import Foundation
import Policy

enum PolicyFixture {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let root = here.appendingPathComponent("Fixtures")
    /// The real event logs live with the Attest tests (Tests/AttestTests/Fixtures/eventlogs, MANIFEST.md there).
    static let eventLogs = here.deletingLastPathComponent().appendingPathComponent("AttestTests/Fixtures/eventlogs")
    static let repository = here.deletingLastPathComponent().deletingLastPathComponent()

    static let logNames: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: eventLogs.path)) ?? [])
        .filter { $0.hasSuffix(".bin") }.sorted()

    static func log(_ name: String) throws -> UnverifiedEventLog {
        try UnverifiedEventLog(bytes: Array(try Data(contentsOf: eventLogs.appendingPathComponent(name))))
    }

    static func policy(_ yaml: String, file: String = "test.yaml") throws(PolicyError) -> AttestationPolicy {
        var p = try PolicyLoader.parse(yaml, file: file)
        try PolicyLoader.resolveForTesting(&p)
        return p
    }
}
