import Testing
import Foundation
import Attest
import Policy

/// Every rule kind with a passing, a failing and (where the rule can be vacuous) a not-applicable case.
@Suite struct RuleTests {
    // MARK: Evidence

    static let gce = PolicyFixture.here.deletingLastPathComponent().appendingPathComponent("AttestTests/Fixtures/quotes/gce_cos85_nonce9009")
    static func gceFile(_ n: String) throws -> [UInt8] { Array(try Data(contentsOf: gce.appendingPathComponent("gce_cos85_nonce9009.\(n)"))) }

    /// The GCE vTPM's verified SHA-256 quote and log (RSA-2048 AK), with optional identity and freshness inputs.
    static func signed(ek: EKCertificate? = nil, chain: EKCertificateVerifier.Result? = nil, issued: Date? = nil,
                       previousReset: Int? = nil, now: Date = Date(timeIntervalSince1970: 2_000_000_000)) throws -> PolicyEvidence {
        let all = try JSONDecoder().decode([String: [String: String]].self, from: Data(try gceFile("quote_pcrs.json")))
        let ak = try TPMTPublic(tpmtPublicBytes: try gceFile("ak_pub.tpmt_public.bin"))
        let attest = try gceFile("quote1_sha256.attest.bin")
        var previous: VerifiedQuote?
        if let delta = previousReset {
            let decoded = try TPMSAttest(bytes: attest)
            var bytes = attest
            let at = 8 + decoded.qualifiedSigner.bytes.count + 2 + decoded.extraData.count + 8  // resetCount offset
            let reset = UInt32(Int(decoded.clockInfo.resetCount) + delta)
            bytes.replaceSubrange(at..<(at + 4), with: [UInt8(reset >> 24), UInt8((reset >> 16) & 0xFF), UInt8((reset >> 8) & 0xFF), UInt8(reset & 0xFF)])
            let old = try TPMSAttest(bytes: bytes)
            previous = VerifiedQuote(uncheckedAttest: old, selection: TPMLPCRSelection([]), pcrs: PCRValues())
        }
        let quote = try QuoteVerifier(akPublic: ak).verify(attest: attest, signature: try gceFile("quote1_sha256.sig.bin"), nonce: [0x90, 0x09],
                                                          pcrs: try PCRValues(jsonObject: ["sha256": all["sha256"] ?? [:]]), previous: previous)
        let log = try UnverifiedEventLog(bytes: try gceFile("eventlog.bin"))
        return .verified(quote: quote, eventLog: log, akPublic: ak, ekCertificate: ek, ekChain: chain, nonceIssuedAt: issued, checkedAt: now)
    }

    static func unsigned(_ log: String) throws -> PolicyEvidence { .unsigned(eventLog: try PolicyFixture.log(log)) }

    static func ek(_ leaf: String) throws -> EKCertificate {
        try EKCertificate(bytes: Array(try Data(contentsOf: PolicyFixture.root.appendingPathComponent("ekcerts/leaf/\(leaf)"))))
    }

    static func status(_ yaml: String, _ evidence: PolicyEvidence, rule: String) throws -> Verdict.Status? {
        let policy = try PolicyFixture.policy("id: t\nversion: 1\n" + yaml)
        return PolicyEngine.evaluate(evidence, policy).results.first { $0.rule == rule }?.status
    }

    // MARK: Identity

    @Test func ekCertificate() throws {
        let rule = "identity.ek_certificate"
        #expect(try Self.status("identity:\n  ek_certificate: required\n", Self.signed(ek: Self.ek("stm-rsa-ek-ca05-ffpadded.der")), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  ek_certificate: required\n", Self.signed(), rule: rule) == .failed)
        #expect(try Self.status("identity:\n  ek_certificate: optional\n", Self.signed(), rule: rule) == .notApplicable)
    }

    @Test func ekChain() throws {
        let rule = "identity.ek_chain", yaml = "identity:\n  ek_ca: ca\n"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        #expect(try Self.status(yaml, Self.signed(ek: stm, chain: .valid(chain: [stm.certificate])), rule: rule) == .passed)
        #expect(try Self.status(yaml, Self.signed(ek: stm, chain: .invalid(reason: "issuer not found: X")), rule: rule) == .failed)
        #expect(try Self.status(yaml, Self.signed(), rule: rule) == .notApplicable)
    }

    @Test func manufacturer() throws {
        let rule = "identity.manufacturer"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        #expect(try Self.status("identity:\n  manufacturers: [STM]\n", Self.signed(ek: stm), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  manufacturers: [\"id:53544D20\"]\n", Self.signed(ek: stm), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  manufacturers: [IFX, NTC]\n", Self.signed(ek: stm), rule: rule) == .failed)
        #expect(try Self.status("identity:\n  manufacturers: [STM]\n", Self.signed(), rule: rule) == .notApplicable)
    }

    @Test func minimumFirmwareVersion() throws {
        let rule = "identity.min_firmware_version"
        #expect(try Self.status("identity:\n  min_firmware_version: \"1\"\n", Self.signed(), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  min_firmware_version: \"0xffffffffffffffff\"\n", Self.signed(), rule: rule) == .failed)
        #expect(try Self.status("identity:\n  min_firmware_version: \"1\"\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule) == .notApplicable)
    }

    @Test func minimumFirmwareVersionPerManufacturer() throws {
        let rule = "identity.min_firmware_version"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        #expect(try Self.status("identity:\n  min_firmware_version:\n    STM: \"1\"\n", Self.signed(ek: stm), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  min_firmware_version:\n    \"id:53544D20\": \"0xffffffffffffffff\"\n", Self.signed(ek: stm), rule: rule) == .failed)
        #expect(try Self.status("identity:\n  min_firmware_version:\n    IFX: \"1\"\n", Self.signed(ek: stm), rule: rule) == .notApplicable)
    }

    @Test func akAlgorithm() throws {
        let rule = "identity.ak_algorithm"
        #expect(try Self.status("identity:\n  ak_algorithms: [rsa-2048]\n", Self.signed(), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  ak_algorithms: [ecc-p256]\n", Self.signed(), rule: rule) == .failed)
        #expect(try Self.status("identity:\n  ak_algorithms: [ecc-p256]\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule) == .notApplicable)
    }

    // MARK: Freshness

    @Test func nonceAge() throws {
        let rule = "freshness.nonce_age", now = Date(timeIntervalSince1970: 2_000_000_000)
        #expect(try Self.status("freshness:\n  max_nonce_age_seconds: 60\n", Self.signed(issued: now.addingTimeInterval(-10), now: now), rule: rule) == .passed)
        #expect(try Self.status("freshness:\n  max_nonce_age_seconds: 60\n", Self.signed(issued: now.addingTimeInterval(-600), now: now), rule: rule) == .failed)
        #expect(try Self.status("freshness:\n  max_nonce_age_seconds: 60\n", Self.signed(), rule: rule) == .notApplicable)
    }

    @Test func reboot() throws {
        let rule = "freshness.reboot"
        #expect(try Self.status("freshness:\n  allow_reboot: false\n", Self.signed(previousReset: 0), rule: rule) == .passed)
        #expect(try Self.status("freshness:\n  allow_reboot: false\n", Self.signed(previousReset: -1), rule: rule) == .failed)
        #expect(try Self.status("freshness:\n  allow_reboot: true\n", Self.signed(previousReset: -1), rule: rule) == .passed)
        #expect(try Self.status("freshness:\n  allow_reboot: true\n", Self.signed(previousReset: 1), rule: rule) == .failed)  // counters went backwards
        #expect(try Self.status("freshness:\n  allow_reboot: false\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule) == .notApplicable)
    }

    // MARK: PCRs

    @Test func pcrValues() throws {
        let e = try Self.signed()
        let pcr0 = Hex.encode(try #require(e.pcrs[.sha256, 0]))
        #expect(try Self.status("pcrs:\n  sha256:\n    \"0\": [\(pcr0)]\n", e, rule: "pcrs.sha256.0") == .passed)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"0\": [\(String(repeating: "ab", count: 32))]\n", e, rule: "pcrs.sha256.0") == .failed)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"0\": any\n", e, rule: "pcrs.sha256.0") == .notApplicable)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"4\": replay\n", e, rule: "pcrs.sha256.4") == .passed)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"4\": replay\n", Self.unsigned("gce-rhel8-sb.bin"), rule: "pcrs.sha256.4") == .passed)
        // PCR 10 (IMA) is not in the firmware log: its quoted value is not the log's replay.
        #expect(try Self.status("pcrs:\n  sha256:\n    \"10\": replay\n", e, rule: "pcrs.sha256.10") == .failed)
    }

    @Test func trustedBanks() throws {
        #expect(try Self.status("pcrs:\n  banks: [sha256]\n  sha256:\n    \"0\": any\n", Self.signed(), rule: "pcrs.banks.sha256") == .passed)
        #expect(try Self.status("pcrs:\n  banks: [sha384]\n  sha384:\n    \"0\": any\n", Self.signed(), rule: "pcrs.banks.sha384") == .failed)
        #expect(try Self.status("pcrs:\n  banks: [sha256, sha1]\n  sha256:\n    \"0\": any\n", Self.signed(), rule: "pcrs.banks.sha1") == .notApplicable)
    }

    // MARK: Boot

    @Test func secureBoot() throws {
        #expect(try Self.status("boot:\n  secure_boot: required\n", Self.unsigned("gce-rhel8-sb.bin"), rule: "boot.secure_boot") == .passed)
        #expect(try Self.status("boot:\n  secure_boot: required\n", Self.unsigned("laptop-glinux-nosb.bin"), rule: "boot.secure_boot") == .failed)
        #expect(try Self.status("boot:\n  secure_boot: forbidden\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.secure_boot") == nil
                || Self.status("pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  secure_boot: forbidden\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.secure_boot") == .notApplicable)
        #expect(try Self.status("pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  secure_boot: required\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.secure_boot") == .failed)
    }

    @Test func signatureDatabases() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        let facts = try #require(e.facts(trustedBanks: ["sha256"]))
        guard case .x509(_, _, let fp) = try #require(facts.signatureDatabases["db"]?.first) else { Issue.record("no db cert"); return }
        #expect(try Self.status("boot:\n  db:\n    contains: [\(fp)]\n", e, rule: "boot.db") == .passed)
        #expect(try Self.status("boot:\n  db:\n    contains: [\(String(repeating: "0", count: 64))]\n", e, rule: "boot.db") == .failed)
        #expect(try Self.status("boot:\n  kek:\n    equals: []\n", e, rule: "boot.kek") == .failed)
        let legacy = "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\n"  // a legacy-BIOS log: no UEFI variables at all
        #expect(try Self.status(legacy + "boot:\n  db:\n    contains: [\(fp)]\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.db") == .notApplicable)
        #expect(try Self.status("boot:\n  dbx:\n    min_entries: 100\n", e, rule: "boot.dbx.min_entries") == .passed)
        #expect(try Self.status("boot:\n  dbx:\n    min_entries: 1000\n", e, rule: "boot.dbx.min_entries") == .failed)
        #expect(try Self.status(legacy + "boot:\n  dbx:\n    min_entries: 1\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.dbx.min_entries") == .notApplicable)
    }

    @Test func bootApplications() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        let facts = try #require(e.facts(trustedBanks: ["sha256"]))
        let apps = facts.bootApplications.compactMap { $0.sha256 }
        #expect(try Self.status("boot:\n  boot_applications:\n    allowed: [\(apps.joined(separator: ", "))]\n    ordered: true\n", e, rule: "boot.boot_applications") == .passed)
        #expect(try Self.status("boot:\n  boot_applications:\n    allowed: [\(apps.reversed().joined(separator: ", "))]\n    ordered: true\n", e, rule: "boot.boot_applications") == .failed)
        let unordered = try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  boot_applications:\n    allowed: [\(apps.dropFirst().joined(separator: ", "))]\n")
        let failure = try #require(PolicyEngine.evaluate(e, unordered).results.first { $0.rule == "boot.boot_applications" })
        #expect(failure.status == .failed)
        #expect(failure.event != nil && failure.pcr == 4)
        // Fedora 37 with systemd-boot measures no EV_EFI_BOOT_SERVICES_APPLICATION in this log.
        #expect(try Self.status("boot:\n  boot_applications:\n    allowed: [\(apps[0])]\n", Self.unsigned("fedora37-sdboot-sha256.bin"), rule: "boot.boot_applications") == .notApplicable)
    }

    @Test func kernelCommandLine() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        #expect(try Self.status("boot:\n  kernel_cmdline:\n    required: [ro]\n    forbidden: [init]\n", e, rule: "boot.kernel_cmdline") == .passed)
        #expect(try Self.status("boot:\n  kernel_cmdline:\n    forbidden: [crashkernel]\n", e, rule: "boot.kernel_cmdline") == .failed)
        #expect(try Self.status("boot:\n  kernel_cmdline:\n    allowed_patterns: [\"root=*\", ro]\n", e, rule: "boot.kernel_cmdline") == .failed)
        #expect(try Self.status("pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  kernel_cmdline:\n    forbidden: [init]\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.kernel_cmdline") == .notApplicable)
    }

    @Test func forbiddenEventsAndFirmwareVersions() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        #expect(try Self.status("boot:\n  forbid: [error_separators]\n", e, rule: "boot.forbid.error_separators") == .passed)
        #expect(try Self.status("boot:\n  scrtm_versions: [\"GCE Virtual Firmware v1\"]\n", e, rule: "boot.scrtm_versions") == .passed)
        #expect(try Self.status("boot:\n  scrtm_versions: [\"GCE Virtual Firmware v2\"]\n", e, rule: "boot.scrtm_versions") == .failed)
        #expect(try Self.status("pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  scrtm_versions: [x]\n", Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.scrtm_versions") == .notApplicable)
    }

    @Test func tamperedEventsCannotHideFromBootRules() throws {
        // The quote's PCR 4 does not match the log: boot-application facts are refused, not silently empty.
        var e = try Self.signed()
        var pcrs = e.pcrs
        pcrs[.sha256, 4] = [UInt8](repeating: 4, count: 32)
        let q = try #require(e.quote)
        e = .verified(quote: VerifiedQuote(uncheckedAttest: q.attest, selection: q.selection, pcrs: pcrs),
                      eventLog: try UnverifiedEventLog(bytes: try Self.gceFile("eventlog.bin")), akPublic: try #require(e.akPublic),
                      ekCertificate: nil, ekChain: nil, nonceIssuedAt: nil)
        let policy = try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  boot_applications:\n    allowed: [\(String(repeating: "0", count: 64))]\n")
        let r = try #require(PolicyEngine.evaluate(e, policy).results.first { $0.rule == "boot.boot_applications" })
        #expect(r.status == .failed)
        #expect(r.pcr == 4)
        #expect(r.actual.contains("does not replay"))
    }

    @Test func warnOnlyRulesAreReportedButDoNotFail() throws {
        let e = try Self.unsigned("laptop-glinux-nosb.bin")
        let policy = try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  secure_boot: required\nenforce:\n  boot.secure_boot: false\n")
        let v = PolicyEngine.evaluate(e, policy)
        #expect(v.pass)
        #expect(v.warnings.map(\.rule) == ["boot.secure_boot"])
        #expect(EARAppraisal(v).status == "warning")
        let strict = PolicyEngine.evaluate(e, try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  secure_boot: required\n"))
        #expect(!strict.pass)
        #expect(EARAppraisal(strict).status == "contraindicated")
        #expect(EARAppraisal(strict).trustVector["configuration"] == 96)
    }

    @Test func acceptAnyIsExplicitAndVisible() throws {
        let v = PolicyEngine.evaluate(try Self.unsigned("gce-rhel8-sb.bin"), try PolicyFixture.policy("id: t\nversion: 1\naccept: any\n"))
        #expect(v.pass)
        #expect(v.results.map(\.rule) == ["accept"])
    }
}

/// Forbidden-event rules on synthetic logs (no real fixture shows an error separator or UEFI debug mode).
@Suite struct ForbiddenEventRuleTests {
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// A SHA-1 format log whose events carry the SHA-1 of their data (as firmware computes them).
    static func log(_ events: [(pcr: UInt32, type: UInt32, data: [UInt8])]) throws -> UnverifiedEventLog {
        var bytes: [UInt8] = []
        for e in events {
            bytes += le32(e.pcr) + le32(e.type) + (try TPMDigest.hash(.sha1, e.data)) + le32(UInt32(e.data.count)) + e.data
        }
        return try UnverifiedEventLog(bytes: bytes)
    }

    static let policy = "id: t\nversion: 1\npcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": replay\nboot:\n  forbid: [error_separators, uefi_debug_mode, events_after_exit_boot_services]\n"

    @Test func anErrorSeparatorADebugModeMarkerAndLateEventsAreNamed() throws {
        let clean = try Self.log([(0, 8, Array("fw 1.0".utf8)), (7, 0x8000_0007, Array("Calling EFI Application from Boot Option".utf8)),
                                  (0, 4, [0, 0, 0, 0]), (7, 4, [0, 0, 0, 0])])
        let v = PolicyEngine.evaluate(.unsigned(eventLog: clean), try PolicyFixture.policy(Self.policy))
        #expect(v.pass, "\(v.failures.map(\.line))")
        let statuses = Dictionary(uniqueKeysWithValues: v.results.map { ($0.rule, $0.status) })
        #expect(statuses["boot.forbid.error_separators"] == .passed)
        #expect(statuses["boot.forbid.uefi_debug_mode"] == .passed)
        // No ExitBootServices was measured: "after" it cannot be judged.
        #expect(statuses["boot.forbid.events_after_exit_boot_services"] == .notApplicable)
        // Nothing measured at all in PCR 7 and no separators: the markers cannot be judged either.
        let bare = try Self.log([(0, 8, Array("fw 1.0".utf8))])
        let b = Dictionary(uniqueKeysWithValues: PolicyEngine.evaluate(.unsigned(eventLog: bare), try PolicyFixture.policy(Self.policy)).results.map { ($0.rule, $0.status) })
        #expect(b["boot.forbid.error_separators"] == .notApplicable)
        #expect(b["boot.forbid.uefi_debug_mode"] == .notApplicable)
        let bad = try Self.log([(0, 8, Array("fw 1.0".utf8)), (7, 0x8000_0007, Array("UEFI Debug Mode".utf8)),
                                (0, 4, [1, 0, 0, 0]), (7, 4, [0, 0, 0, 0]),
                                (5, 0x8000_0007, Array("Exit Boot Services Invocation".utf8)), (4, 0x8000_0003, [UInt8](repeating: 0, count: 32))])
        let f = PolicyEngine.evaluate(.unsigned(eventLog: bad), try PolicyFixture.policy(Self.policy))
        let failures = Dictionary(uniqueKeysWithValues: f.failures.map { ($0.rule, $0) })
        #expect(failures["boot.forbid.error_separators"]?.event == 2)
        #expect(failures["boot.forbid.error_separators"]?.pcr == 0)
        #expect(failures["boot.forbid.uefi_debug_mode"]?.actual == "UEFI Debug Mode")
        #expect(failures["boot.forbid.events_after_exit_boot_services"]?.event == 5)
    }

    @Test func dbxMustRevokeGivenHashes() throws {
        let e = PolicyEvidence.unsigned(eventLog: try PolicyFixture.log("gce-rhel8-sb.bin"))
        guard case .sha256(_, let revoked)? = e.facts(trustedBanks: ["sha256"])?.signatureDatabases["dbx"]?.first(where: { if case .sha256 = $0 { true } else { false } }) else {
            Issue.record("no dbx hash")
            return
        }
        #expect(try RuleTests.status("boot:\n  dbx:\n    contains: [\(revoked)]\n", e, rule: "boot.dbx") == .passed)
        #expect(try RuleTests.status("boot:\n  dbx:\n    contains: [\(String(repeating: "7", count: 64))]\n", e, rule: "boot.dbx") == .failed)
        let legacy = "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\n"
        #expect(try RuleTests.status(legacy + "boot:\n  dbx:\n    contains: [\(revoked)]\n", .unsigned(eventLog: try PolicyFixture.log("legacy-bios-int19-sha1.bin")), rule: "boot.dbx") == .notApplicable)
    }
}
