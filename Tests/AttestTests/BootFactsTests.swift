import Foundation
import Testing

@testable import Attest

/// Boot facts decoded from real logs: Secure Boot state and databases, boot applications, GRUB and
/// kernel command lines, separators — and only from verified events when a quote is given.
@Suite struct BootFactsTests {
    static func facts(_ name: String) throws -> BootFacts {
        BootFacts(events: try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/\(name)")).events)
    }

    @Test func secureBootLinuxWithShimAndGRUB() throws {
        let f = try Self.facts("gce-rhel8-sb.bin")
        #expect(f.secureBoot == true)
        #expect(f.signatureDatabases["PK"]?.count == 1)
        #expect(f.signatureDatabases["db"]?.count == 2)
        #expect(f.signatureDatabases["dbx"]?.count == 186)
        guard case .x509(_, _, let fingerprint) = try #require(f.signatureDatabases["db"]?.first) else {
            Issue.record("db[0] is not X.509")
            return
        }
        #expect(fingerprint.count == 64)
        #expect(
            f.bootApplications.map { $0.devicePath.split(separator: "\\").last.map(String.init) ?? "" }.prefix(2) == [
                "shimx64.efi", "grubx64.efi",
            ])
        #expect(f.bootApplications.allSatisfy { $0.digest?.count == 64 })
        #expect(f.kernelCommandLines.contains { $0.contains("root=") }, "\(f.kernelCommandLines)")
        #expect(f.grubCommands.contains("set pager=1"))
        #expect(!f.authorities.isEmpty)
        #expect(f.separators.count >= 7 && f.separators.allSatisfy { !$0.isError })
        #expect(f.sCRTMVersions == ["GCE Virtual Firmware v1"])
        #expect(f.efiActions.contains("Calling EFI Application from Boot Option"))
        #expect(f.debugMarkers.isEmpty)
    }

    @Test func secureBootOffIsReportedAsOff() throws {
        let f = try Self.facts("laptop-glinux-nosb.bin")
        #expect(f.secureBoot == false)
    }

    @Test func systemdBootKernelCommandLineIsFound() throws {
        let f = try Self.facts("fedora37-sdboot-sha256.bin")
        #expect(!f.kernelCommandLines.isEmpty, "\(f)")
    }

    @Test func everyFixtureDecodesWithoutTrapping() throws {
        for name in EventLogReplayTests.logs {
            let log = try UnverifiedEventLog(bytes: Fixture.bytes("eventlogs/\(name)"))
            for e in log.events { _ = DecodedEventData(e).summary }
            _ = BootFacts(events: log.events)
        }
    }

    @Test func policyFactsComeOnlyFromVerifiedEvents() throws {
        // Verify the GCE log against its SHA-256 quote, with PCR 4 tampered in the quote's view: the
        // boot applications (PCR 4) drop out of the facts, PCR 7's Secure Boot state stays.
        let base = "quotes/gce_cos85_nonce9009/gce_cos85_nonce9009"
        let ak = try TPMTPublic(tpmtPublicBytes: Fixture.bytes("\(base).ak_pub.tpmt_public.bin"))
        let all = try JSONDecoder().decode(
            [String: [String: String]].self, from: Data(Fixture.bytes("\(base).quote_pcrs.json")))
        let q = try QuoteVerifier(akPublic: ak).verify(
            attest: Fixture.bytes("\(base).quote1_sha256.attest.bin"),
            signature: Fixture.bytes("\(base).quote1_sha256.sig.bin"), nonce: [0x90, 0x09],
            pcrs: try PCRValues(jsonObject: ["sha256": all["sha256"] ?? [:]]))
        var pcrs = q.pcrs
        pcrs[.sha256, 4] = [UInt8](repeating: 0x44, count: 32)
        let forged = VerifiedQuote(uncheckedAttest: q.attest, selection: q.selection, pcrs: pcrs)
        let log = try UnverifiedEventLog(bytes: Fixture.bytes("\(base).eventlog.bin"))
        let honest = BootFacts(EventLogVerifier.verify(log, against: q), bank: .sha256)
        let partial = BootFacts(EventLogVerifier.verify(log, against: forged), bank: .sha256)
        #expect(!honest.bootApplications.isEmpty)
        #expect(partial.bootApplications.isEmpty)
        #expect(partial.secureBoot == honest.secureBoot)
    }
}
