import Attest
import Foundation
import Testing

/// Real machines' event logs (Fixtures/eventlogs, see its MANIFEST.md): every one parses, and where the
/// source recorded the PCRs the TPM really held, replay reproduces them in every bank it records.
@Suite struct EventLogReplayTests {
    static let logs: [String] = {
        let dir = Fixture.root.appendingPathComponent("eventlogs")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".bin") }
            .sorted()
    }()

    static func expected(_ log: String) throws -> [String: [String: String]]? {
        let url = Fixture.root.appendingPathComponent(
            "eventlogs/" + log.replacingOccurrences(of: ".bin", with: ".pcrs.json"))
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONDecoder().decode([String: [String: String]].self, from: Data(contentsOf: url))
    }

    @Test func thereAreSeventeenLogs() {
        #expect(Self.logs.count == 17)
    }

    @Test(arguments: logs)
    func everyLogParses(_ name: String) throws {
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/\(name)"))
        #expect(log.events.count > 0)
    }

    @Test(arguments: logs)
    func replayReproducesTheRecordedPCRs(_ name: String) throws {
        guard let expected = try Self.expected(name) else { return }
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/\(name)"))
        let replay = EventLogReplay(log)
        let extended = Set(log.events.filter(\.isExtended).compactMap(\.pcr))
        var compared = 0
        for (bankName, pcrs) in expected {
            let bank = try #require(TPMAlgorithmID(name: bankName))
            for (key, hex) in pcrs {
                guard let pcr = Int(key), extended.contains(pcr) else { continue }
                #expect(
                    replay.values[bank, pcr].map { Hex.encode($0) } == hex.lowercased(),
                    "\(name) \(bankName) PCR \(pcr)")
                compared += 1
            }
        }
        #expect(compared > 0)
    }
}
