import Attest
import Foundation
import Policy
import Testing
import X509

/// Every rule kind with a passing, a failing and (where the rule can be vacuous) a not-applicable case.
@Suite struct RuleTests {
    // MARK: Evidence

    static let gce = PolicyFixture.here.deletingLastPathComponent().appendingPathComponent(
        "AttestTests/Fixtures/quotes/gce_cos85_nonce9009")
    static func gceFile(_ n: String) throws -> [UInt8] {
        Array(try Data(contentsOf: gce.appendingPathComponent("gce_cos85_nonce9009.\(n)")))
    }
    /// Inside the validity of every fixture certificate chain.
    static let when = Date(timeIntervalSince1970: 1_790_000_000)

    /// The GCE vTPM's signed SHA-256 quote (RSA-2048 AK, nonce 0x9009) and its event log as a bundle.
    static func bundle(ek: EKCertificate? = nil, eventLog: [UInt8]? = nil) throws -> EvidenceBundle {
        let all = try JSONDecoder().decode([String: [String: String]].self, from: Data(try gceFile("quote_pcrs.json")))
        let ak = try TPMTPublic(tpmtPublicBytes: try gceFile("ak_pub.tpmt_public.bin"))
        return EvidenceBundle(
            deviceID: "gce-cos85", nonce: [0x90, 0x09], attest: try gceFile("quote1_sha256.attest.bin"),
            signature: try gceFile("quote1_sha256.sig.bin"),
            pcrs: try PCRValues(jsonObject: ["sha256": all["sha256"] ?? [:]]),
            akPublic: ak, ekCertificate: ek?.derBytes, deviceCertificate: nil,
            eventLog: try eventLog ?? gceFile("eventlog.bin"), collectedAt: when)
    }

    /// The controller's credential-activation record for the GCE AK and `ek` (a verifier-side input).
    static func binding(ek: EKCertificate?) throws -> AKBinding {
        let ak = try AKPublic(try TPMTPublic(tpmtPublicBytes: try gceFile("ak_pub.tpmt_public.bin")))
        return AKBinding(
            akName: try #require(ak.name),
            ekPublicKeySHA256: try ek.map { try AKBinding.fingerprint(of: $0.certificate.publicKey) } ?? "",
            activatedAt: nil)
    }

    static func anchors(_ folder: String) throws -> EKTrustAnchors {
        try EKTrustAnchors(folder: PolicyFixture.root.appendingPathComponent("ekcerts/\(folder)").path)
    }

    /// Verified GCE evidence, with optional identity and freshness inputs the verifier supplies.
    static func signed(
        ek: EKCertificate? = nil, anchors: EKTrustAnchors? = nil, bound: Bool = false, issued: Date? = nil,
        previousReset: Int? = nil, now: Date = when, eventLog: [UInt8]? = nil,
        required: TPMLPCRSelection = TPMLPCRSelection([])
    ) async throws -> VerifiedEvidence {
        var previous: PreviousQuote?
        if let delta = previousReset {
            let decoded = try TPMSAttest(bytes: try gceFile("quote1_sha256.attest.bin"))
            let c = decoded.clockInfo
            previous = PreviousQuote(
                clockInfo: TPMSClockInfo(
                    clock: c.clock, resetCount: UInt32(Int(c.resetCount) + delta), restartCount: c.restartCount,
                    safe: true),
                firmwareVersion: decoded.firmwareVersion)
        }
        let verifier = EvidenceVerifier(
            nonce: [0x90, 0x09], nonceIssuedAt: issued, requiredSelection: required, anchors: anchors,
            akBinding: bound ? try binding(ek: ek) : nil, previous: previous, now: now)
        return try await verifier.verify(try bundle(ek: ek, eventLog: eventLog))
    }

    static func unsigned(_ log: String) throws -> UnsignedEvidence {
        UnsignedEvidence(eventLog: try PolicyFixture.log(log))
    }

    static func ek(_ leaf: String) throws -> EKCertificate {
        try EKCertificate(
            bytes: Array(try Data(contentsOf: PolicyFixture.root.appendingPathComponent("ekcerts/leaf/\(leaf)"))))
    }

    static func status(_ yaml: String, _ evidence: VerifiedEvidence, rule: String) throws -> Verdict.Status? {
        let policy = try PolicyFixture.policy("id: t\nversion: 1\n" + yaml)
        return PolicyEngine.evaluate(evidence, policy).results.first { $0.rule == rule }?.status
    }

    static func status(_ yaml: String, _ evidence: UnsignedEvidence, rule: String) throws -> Verdict.Status? {
        let policy = try PolicyFixture.policy("id: t\nversion: 1\n" + yaml)
        return PolicyEngine.evaluate(evidence, policy).results.first { $0.rule == rule }?.status
    }

    static func result(_ yaml: String, _ evidence: VerifiedEvidence, rule: String) throws -> Verdict.RuleResult? {
        let policy = try PolicyFixture.policy("id: t\nversion: 1\n" + yaml)
        return PolicyEngine.evaluate(evidence, policy).results.first { $0.rule == rule }
    }

    // MARK: Identity

    @Test func ekCertificate() async throws {
        let rule = "identity.ek_certificate", yaml = "identity:\n  ek_certificate: required\n"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        #expect(try Self.status(yaml, await Self.signed(ek: stm, bound: true), rule: rule) == .passed)
        #expect(try Self.status(yaml, await Self.signed(), rule: rule) == .failed)
        #expect(
            try Self.status("identity:\n  ek_certificate: optional\n", await Self.signed(), rule: rule)
                == .notApplicable)
        // A genuine EK certificate next to an AK that no credential activation tied to it proves nothing.
        let unbound = try #require(try Self.result(yaml, await Self.signed(ek: stm), rule: rule))
        #expect(unbound.status == .failed)
        #expect(unbound.actual.hasPrefix("AK not bound to the EK"), "\(unbound.actual)")
        // Optional: the unbound certificate is reported, not failed (what an EVE group's policy relies on).
        let optional = try #require(
            try Self.result("identity:\n  ek_certificate: optional\n", await Self.signed(ek: stm), rule: rule))
        #expect(optional.status == .notApplicable)
        #expect(optional.actual.hasPrefix("AK not bound to the EK"), "\(optional.actual)")
    }

    @Test func akActivated() async throws {
        let rule = "identity.ak_activated", yaml = "identity:\n  ak_activated: required\n"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        #expect(try Self.status(yaml, await Self.signed(ek: stm, bound: true), rule: rule) == .passed)
        // An AK only a device certificate vouches for (EVE's API): refused, and the verdict says why.
        let unbound = try #require(try Self.result(yaml, await Self.signed(ek: stm), rule: rule))
        #expect(unbound.status == .failed)
        #expect(unbound.actual.hasPrefix("not activated"), "\(unbound.actual)")
        #expect(
            try Self.status("identity:\n  ak_activated: optional\n", await Self.signed(ek: stm), rule: rule)
                == .notApplicable)
        // The EAR instance-identity claim is contraindicated when the rule is enforced and fails.
        let policy = try PolicyFixture.policy("id: t\nversion: 1\n" + yaml)
        let verdict = PolicyEngine.evaluate(try await Self.signed(ek: stm), policy)
        #expect(!verdict.pass)
        #expect(EARAppraisal(verdict).trustVector["instance-identity"] == 96)
        #expect(throws: PolicyError.self) {
            try PolicyFixture.policy("id: t\nversion: 1\nidentity:\n  ak_activated: yes\n")
        }
    }

    @Test func ekChain() async throws {
        let rule = "identity.ek_chain", yaml = "identity:\n  ek_ca: ekcerts/vendor-ca\n"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        let vendor = try Self.anchors("vendor-ca")
        #expect(try Self.status(yaml, await Self.signed(ek: stm, anchors: vendor, bound: true), rule: rule) == .passed)
        #expect(
            try Self.status(
                yaml, await Self.signed(ek: stm, anchors: try Self.anchors("gce-ca"), bound: true), rule: rule)
                == .failed)
        #expect(try Self.status(yaml, await Self.signed(ek: stm, anchors: vendor), rule: rule) == .failed)  // not bound
        // no EK certificate
        #expect(try Self.status(yaml, await Self.signed(anchors: vendor, bound: true), rule: rule) == .failed)
        // no anchors supplied
        #expect(try Self.status(yaml, await Self.signed(ek: stm, bound: true), rule: rule) == .failed)
    }

    @Test func manufacturer() async throws {
        let rule = "identity.manufacturer"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        let good = try await Self.signed(ek: stm, anchors: try Self.anchors("vendor-ca"), bound: true)
        #expect(try Self.status("identity:\n  manufacturers: [STM]\n", good, rule: rule) == .passed)
        #expect(try Self.status("identity:\n  manufacturers: [\"id:53544D20\"]\n", good, rule: rule) == .passed)
        #expect(try Self.status("identity:\n  manufacturers: [IFX, NTC]\n", good, rule: rule) == .failed)
        #expect(try Self.status("identity:\n  manufacturers: [STM]\n", await Self.signed(), rule: rule) == .failed)
        // The manufacturer named by a certificate that does not chain to a trusted CA is not believed.
        #expect(
            try Self.status("identity:\n  manufacturers: [STM]\n", await Self.signed(ek: stm, bound: true), rule: rule)
                == .failed)
    }

    @Test func minimumFirmwareVersion() async throws {
        let rule = "identity.min_firmware_version"
        #expect(
            try Self.status("identity:\n  min_firmware_version: \"1\"\n", await Self.signed(bound: true), rule: rule)
                == .passed)
        #expect(
            try Self.status(
                "identity:\n  min_firmware_version: \"0xffffffffffffffff\"\n", await Self.signed(bound: true),
                rule: rule) == .failed)
        #expect(
            // not bound
            try Self.status("identity:\n  min_firmware_version: \"1\"\n", await Self.signed(), rule: rule) == .failed)
        #expect(
            try Self.status("identity:\n  min_firmware_version: \"1\"\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule)
                == .failed)
    }

    @Test func minimumFirmwareVersionPerManufacturer() async throws {
        let rule = "identity.min_firmware_version"
        let stm = try Self.ek("stm-rsa-ek-ca05-ffpadded.der")
        let good = try await Self.signed(ek: stm, anchors: try Self.anchors("vendor-ca"), bound: true)
        #expect(try Self.status("identity:\n  min_firmware_version:\n    STM: \"1\"\n", good, rule: rule) == .passed)
        #expect(
            try Self.status(
                "identity:\n  min_firmware_version:\n    \"id:53544D20\": \"0xffffffffffffffff\"\n", good, rule: rule)
                == .failed)
        #expect(try Self.status("identity:\n  min_firmware_version:\n    IFX: \"1\"\n", good, rule: rule) == .failed)
    }

    @Test func akAlgorithm() async throws {
        let rule = "identity.ak_algorithm"
        #expect(try Self.status("identity:\n  ak_algorithms: [rsa-2048]\n", await Self.signed(), rule: rule) == .passed)
        #expect(try Self.status("identity:\n  ak_algorithms: [ecc-p256]\n", await Self.signed(), rule: rule) == .failed)
        #expect(
            try Self.status("identity:\n  ak_algorithms: [ecc-p256]\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule)
                == .failed)
    }

    // MARK: Freshness

    @Test func nonceAge() async throws {
        let rule = "freshness.nonce_age", now = Self.when
        #expect(
            try Self.status(
                "freshness:\n  max_nonce_age_seconds: 60\n",
                await Self.signed(issued: now.addingTimeInterval(-10), now: now), rule: rule) == .passed)
        #expect(
            try Self.status(
                "freshness:\n  max_nonce_age_seconds: 60\n",
                await Self.signed(issued: now.addingTimeInterval(-600), now: now), rule: rule) == .failed)
        // Without the issue time the verifier cannot vouch for freshness: fail, never "not applicable".
        #expect(
            try Self.status("freshness:\n  max_nonce_age_seconds: 60\n", await Self.signed(), rule: rule) == .failed)
    }

    @Test func reboot() async throws {
        let rule = "freshness.reboot"
        #expect(
            try Self.status("freshness:\n  allow_reboot: false\n", await Self.signed(previousReset: 0), rule: rule)
                == .passed)
        #expect(
            try Self.status("freshness:\n  allow_reboot: false\n", await Self.signed(previousReset: -1), rule: rule)
                == .failed)
        #expect(
            try Self.status("freshness:\n  allow_reboot: true\n", await Self.signed(previousReset: -1), rule: rule)
                == .passed)
        #expect(
            try Self.status("freshness:\n  allow_reboot: true\n", await Self.signed(previousReset: 1), rule: rule)
                == .failed)  // counters went backwards
        // No previous quote: nothing is known about reboots, so "no reboot" cannot pass.
        #expect(try Self.status("freshness:\n  allow_reboot: false\n", await Self.signed(), rule: rule) == .failed)
        #expect(
            try Self.status("freshness:\n  allow_reboot: false\n", Self.unsigned("gce-rhel8-sb.bin"), rule: rule)
                == .failed)
    }

    // MARK: PCRs

    @Test func pcrValues() async throws {
        let e = try await Self.signed()
        let pcr0 = Hex.encode(try #require(e.quote.pcrs[.sha256, 0]))
        #expect(try Self.status("pcrs:\n  sha256:\n    \"0\": [\(pcr0)]\n", e, rule: "pcrs.sha256.0") == .passed)
        #expect(
            try Self.status(
                "pcrs:\n  sha256:\n    \"0\": [\(String(repeating: "ab", count: 32))]\n", e, rule: "pcrs.sha256.0")
                == .failed)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"0\": any\n", e, rule: "pcrs.sha256.0") == .notApplicable)
        #expect(try Self.status("pcrs:\n  sha256:\n    \"4\": replay\n", e, rule: "pcrs.sha256.4") == .passed)
        #expect(
            try Self.status(
                "pcrs:\n  sha256:\n    \"4\": replay\n", Self.unsigned("gce-rhel8-sb.bin"), rule: "pcrs.sha256.4")
                == .passed)
        // PCR 10 (IMA) is not in the firmware log: its quoted value is not the log's replay.
        #expect(try Self.status("pcrs:\n  sha256:\n    \"10\": replay\n", e, rule: "pcrs.sha256.10") == .failed)
    }

    @Test func trustedBanks() async throws {
        let e = try await Self.signed()
        #expect(
            try Self.status("pcrs:\n  banks: [sha256]\n  sha256:\n    \"0\": any\n", e, rule: "pcrs.banks.sha256")
                == .passed)
        #expect(
            try Self.status("pcrs:\n  banks: [sha384]\n  sha384:\n    \"0\": any\n", e, rule: "pcrs.banks.sha384")
                == .failed)
        #expect(
            try Self.status("pcrs:\n  banks: [sha256, sha1]\n  sha256:\n    \"0\": any\n", e, rule: "pcrs.banks.sha1")
                == .notApplicable)
    }

    // MARK: Boot

    @Test func secureBoot() throws {
        #expect(
            try Self.status(
                "boot:\n  secure_boot: required\n", Self.unsigned("gce-rhel8-sb.bin"), rule: "boot.secure_boot")
                == .passed)
        #expect(
            try Self.status(
                "boot:\n  secure_boot: required\n", Self.unsigned("laptop-glinux-nosb.bin"), rule: "boot.secure_boot")
                == .failed)
        #expect(
            try Self.status(
                "boot:\n  secure_boot: forbidden\n", Self.unsigned("legacy-bios-int19-sha1.bin"),
                rule: "boot.secure_boot") == nil
                || Self.status(
                    "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  secure_boot: forbidden\n",
                    Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.secure_boot") == .notApplicable
        )
        #expect(
            try Self.status(
                "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  secure_boot: required\n",
                Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.secure_boot") == .failed)
    }

    @Test func signatureDatabases() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        let facts = try #require(e.facts[.sha256])
        guard case .x509(_, _, let fp) = try #require(facts.signatureDatabases["db"]?.first) else {
            Issue.record("no db cert")
            return
        }
        #expect(try Self.status("boot:\n  db:\n    contains: [\(fp)]\n", e, rule: "boot.db") == .passed)
        #expect(
            try Self.status("boot:\n  db:\n    contains: [\(String(repeating: "0", count: 64))]\n", e, rule: "boot.db")
                == .failed)
        #expect(try Self.status("boot:\n  kek:\n    equals: []\n", e, rule: "boot.kek") == .failed)
        let legacy = "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\n"  // a legacy-BIOS log: no UEFI variables at all
        #expect(
            try Self.status(
                legacy + "boot:\n  db:\n    contains: [\(fp)]\n", Self.unsigned("legacy-bios-int19-sha1.bin"),
                rule: "boot.db") == .notApplicable)
        #expect(try Self.status("boot:\n  dbx:\n    min_entries: 100\n", e, rule: "boot.dbx.min_entries") == .passed)
        #expect(try Self.status("boot:\n  dbx:\n    min_entries: 1000\n", e, rule: "boot.dbx.min_entries") == .failed)
        #expect(
            try Self.status(
                legacy + "boot:\n  dbx:\n    min_entries: 1\n", Self.unsigned("legacy-bios-int19-sha1.bin"),
                rule: "boot.dbx.min_entries") == .notApplicable)
    }

    @Test func bootApplications() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        let facts = try #require(e.facts[.sha256])
        let apps = facts.bootApplications.compactMap { $0.digest }
        #expect(
            try Self.status(
                "boot:\n  boot_applications:\n    allowed: [\(apps.joined(separator: ", "))]\n    ordered: true\n", e,
                rule: "boot.boot_applications") == .passed)
        #expect(
            try Self.status(
                "boot:\n  boot_applications:\n    allowed: [\(apps.reversed().joined(separator: ", "))]\n    ordered: true\n",
                e, rule: "boot.boot_applications") == .failed)
        let unordered = try PolicyFixture.policy(
            "id: t\nversion: 1\nboot:\n  boot_applications:\n    allowed: [\(apps.dropFirst().joined(separator: ", "))]\n"
        )
        let failure = try #require(
            PolicyEngine.evaluate(e, unordered).results.first { $0.rule == "boot.boot_applications" })
        #expect(failure.status == .failed)
        #expect(failure.event != nil && failure.pcr == 4)
        // Fedora 37 with systemd-boot measures no EV_EFI_BOOT_SERVICES_APPLICATION in this log.
        #expect(
            try Self.status(
                "boot:\n  boot_applications:\n    allowed: [\(apps[0])]\n", Self.unsigned("fedora37-sdboot-sha256.bin"),
                rule: "boot.boot_applications") == .notApplicable)
    }

    @Test func kernelCommandLine() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        #expect(
            try Self.status(
                "boot:\n  kernel_cmdline:\n    required: [ro]\n    forbidden: [init]\n", e, rule: "boot.kernel_cmdline")
                == .passed)
        #expect(
            try Self.status("boot:\n  kernel_cmdline:\n    forbidden: [crashkernel]\n", e, rule: "boot.kernel_cmdline")
                == .failed)
        // The failure names where the command line was measured: GRUB's EV_IPL event in PCR 8.
        let failure = try #require(
            PolicyEngine.evaluate(
                e,
                try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  kernel_cmdline:\n    forbidden: [crashkernel]\n")
            )
            .results.first { $0.rule == "boot.kernel_cmdline" })
        let event = try #require(failure.event)
        #expect(failure.pcr == 8 && failure.bank == "sha256", "\(failure)")
        let logged = try #require(e.eventLog.loggedEvents.first { $0.index == event })
        #expect(logged.type == .ipl && String(decoding: logged.data, as: UTF8.self).contains("crashkernel"))
        #expect(
            try Self.status(
                "boot:\n  kernel_cmdline:\n    allowed_patterns: [\"root=*\", ro]\n", e, rule: "boot.kernel_cmdline")
                == .failed)
        #expect(
            try Self.status(
                "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  kernel_cmdline:\n    forbidden: [init]\n",
                Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.kernel_cmdline") == .notApplicable)
    }

    @Test func forbiddenEventsAndFirmwareVersions() throws {
        let e = try Self.unsigned("gce-rhel8-sb.bin")
        #expect(
            try Self.status("boot:\n  forbid: [error_separators]\n", e, rule: "boot.forbid.error_separators") == .passed
        )
        #expect(
            try Self.status("boot:\n  scrtm_versions: [\"GCE Virtual Firmware v1\"]\n", e, rule: "boot.scrtm_versions")
                == .passed)
        #expect(
            try Self.status("boot:\n  scrtm_versions: [\"GCE Virtual Firmware v2\"]\n", e, rule: "boot.scrtm_versions")
                == .failed)
        #expect(
            try Self.status(
                "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\nboot:\n  scrtm_versions: [x]\n",
                // versions are named, none was measured
                Self.unsigned("legacy-bios-int19-sha1.bin"), rule: "boot.scrtm_versions") == .failed)
    }

    @Test func tamperedEventsCannotHideFromBootRules() async throws {
        // The last PCR 4 event removed from the signed GCE evidence's log: boot-application facts are refused.
        let log = try Self.gceFile("eventlog.bin")
        let parsed = try UnverifiedEventLog(bytes: log)
        let last = try #require(parsed.events.last { $0.pcrIndex == 4 })
        let e = try await Self.signed(eventLog: LogEdit.removing(last, from: log, parsed))
        let policy = try PolicyFixture.policy(
            "id: t\nversion: 1\nboot:\n  boot_applications:\n    allowed: [\(String(repeating: "0", count: 64))]\n")
        let r = try #require(PolicyEngine.evaluate(e, policy).results.first { $0.rule == "boot.boot_applications" })
        #expect(r.status == .failed)
        #expect(r.pcr == 4)
        #expect(r.actual.contains("does not replay"), "\(r.actual)")
    }

    @Test func warnOnlyRulesAreReportedButDoNotFail() throws {
        let e = try Self.unsigned("laptop-glinux-nosb.bin")
        let policy = try PolicyFixture.policy(
            "id: t\nversion: 1\nboot:\n  secure_boot: required\nenforce:\n  boot.secure_boot: false\n")
        let v = PolicyEngine.evaluate(e, policy)
        #expect(v.pass)
        #expect(v.warnings.map(\.rule) == ["boot.secure_boot"])
        #expect(EARAppraisal(v).status == "warning")
        let strict = PolicyEngine.evaluate(
            e, try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  secure_boot: required\n"))
        #expect(!strict.pass)
        #expect(EARAppraisal(strict).status == "contraindicated")
        #expect(EARAppraisal(strict).trustVector["configuration"] == 96)
    }

    @Test func acceptAnyIsExplicitAndVisible() throws {
        let v = PolicyEngine.evaluate(
            try Self.unsigned("gce-rhel8-sb.bin"), try PolicyFixture.policy("id: t\nversion: 1\naccept: any\n"))
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
            bytes +=
                le32(e.pcr) + le32(e.type) + (try TPMDigest.hash(.sha1, e.data)) + le32(UInt32(e.data.count)) + e.data
        }
        return try UnverifiedEventLog(bytes: bytes)
    }

    static let policy =
        "id: t\nversion: 1\npcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": replay\nboot:\n  forbid: [error_separators, uefi_debug_mode, events_after_exit_boot_services]\n"

    @Test func anErrorSeparatorADebugModeMarkerAndLateEventsAreNamed() throws {
        let clean = try Self.log([
            (0, 8, Array("fw 1.0".utf8)), (7, 0x8000_0007, Array("Calling EFI Application from Boot Option".utf8)),
            (0, 4, [0, 0, 0, 0]), (7, 4, [0, 0, 0, 0]),
        ])
        let v = PolicyEngine.evaluate(UnsignedEvidence(eventLog: clean), try PolicyFixture.policy(Self.policy))
        #expect(v.pass, "\(v.failures.map(\.line))")
        let statuses = Dictionary(uniqueKeysWithValues: v.results.map { ($0.rule, $0.status) })
        #expect(statuses["boot.forbid.error_separators"] == .passed)
        #expect(statuses["boot.forbid.uefi_debug_mode"] == .passed)
        // No ExitBootServices was measured: "after" it cannot be judged.
        #expect(statuses["boot.forbid.events_after_exit_boot_services"] == .notApplicable)
        // Nothing measured at all in PCR 7 and no separators: the markers cannot be judged either.
        let bare = try Self.log([(0, 8, Array("fw 1.0".utf8))])
        let b = Dictionary(
            uniqueKeysWithValues: PolicyEngine.evaluate(
                UnsignedEvidence(eventLog: bare), try PolicyFixture.policy(Self.policy)
            ).results.map { ($0.rule, $0.status) })
        #expect(b["boot.forbid.error_separators"] == .notApplicable)
        #expect(b["boot.forbid.uefi_debug_mode"] == .notApplicable)
        let bad = try Self.log([
            (0, 8, Array("fw 1.0".utf8)), (7, 0x8000_0007, Array("UEFI Debug Mode".utf8)),
            (0, 4, [1, 0, 0, 0]), (7, 4, [0, 0, 0, 0]),
            (5, 0x8000_0007, Array("Exit Boot Services Invocation".utf8)),
            (4, 0x8000_0003, [UInt8](repeating: 0, count: 32)),
            (5, 0x8000_0007, Array("Late action".utf8)),
        ])
        let f = PolicyEngine.evaluate(UnsignedEvidence(eventLog: bad), try PolicyFixture.policy(Self.policy))
        let failures = Dictionary(uniqueKeysWithValues: f.failures.map { ($0.rule, $0) })
        #expect(failures["boot.forbid.error_separators"]?.event == 2)
        #expect(failures["boot.forbid.error_separators"]?.pcr == 0)
        #expect(failures["boot.forbid.uefi_debug_mode"]?.actual == "UEFI Debug Mode")
        // Judged in PCR 5's attested order: the PCR 4 event logged after it proves nothing (order across PCRs is
        // not attested); the PCR 5 action after the invocation is named.
        #expect(failures["boot.forbid.events_after_exit_boot_services"]?.event == 6)
    }

    @Test func dbxMustRevokeGivenHashes() throws {
        let e = UnsignedEvidence(eventLog: try PolicyFixture.log("gce-rhel8-sb.bin"))
        guard
            case .sha256(_, let revoked)? = e.facts[.sha256]?.signatureDatabases["dbx"]?.first(where: {
                if case .sha256 = $0 { true } else { false }
            })
        else {
            Issue.record("no dbx hash")
            return
        }
        #expect(try RuleTests.status("boot:\n  dbx:\n    contains: [\(revoked)]\n", e, rule: "boot.dbx") == .passed)
        #expect(
            try RuleTests.status(
                "boot:\n  dbx:\n    contains: [\(String(repeating: "7", count: 64))]\n", e, rule: "boot.dbx") == .failed
        )
        let legacy = "pcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": any\n"
        #expect(
            try RuleTests.status(
                legacy + "boot:\n  dbx:\n    contains: [\(revoked)]\n",
                UnsignedEvidence(eventLog: try PolicyFixture.log("legacy-bios-int19-sha1.bin")), rule: "boot.dbx")
                == .notApplicable)
    }
}
