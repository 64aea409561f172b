import Attest
import Foundation
import Policy
import SwiftASN1
import Testing
import X509

/// Each lie a device (or anyone on the wire) could tell, built from the GCE vTPM's real signed evidence and
/// refused with a reason that names the forgery (issue: verifier hardening, findings 1–8).
@Suite struct ForgeryTests {
    static func log() throws -> [UInt8] { try RuleTests.gceFile("eventlog.bin") }

    static func verdict(_ yaml: String, _ e: VerifiedEvidence) throws -> Verdict {
        PolicyEngine.evaluate(e, try PolicyFixture.policy("id: t\nversion: 1\n" + yaml))
    }

    // 1. The evidence brings its own trust anchor.
    @Test func aSelfMadeCAInTheBundleIsNeverAnAnchor() async throws {
        let stm = try RuleTests.ek("stm-rsa-ek-ca05-ffpadded.der")
        // The attacker's "root": a genuine vendor root offered in ek_intermediates, while the verifier trusts only GCE's CAs.
        let folder = PolicyFixture.root.appendingPathComponent("ekcerts/vendor-ca").path
        let offered = try CACertificateFolder(path: folder).certificates
        var bundle = try RuleTests.bundle(ek: stm)
        bundle.ekIntermediates = try offered.map {
            var s = DER.Serializer()
            try s.serialize($0)
            return Data(s.serializedBytes).base64EncodedString()
        }
        let verifier = EvidenceVerifier(
            nonce: [0x90, 0x09], requiredSelection: TPMLPCRSelection([]), anchors: try RuleTests.anchors("gce-ca"),
            akBinding: try RuleTests.binding(ek: stm), now: RuleTests.when)
        let e = try await verifier.verify(bundle)
        guard case .invalid(let reason)? = e.ekChain else {
            Issue.record("a root from the evidence was trusted: \(String(describing: e.ekChain))")
            return
        }
        #expect(reason.contains("issuer not found") || reason.contains("not"), "\(reason)")
        let v = try Self.verdict("identity:\n  ek_ca: ekcerts/gce-ca\n  manufacturers: [STM]\n", e)
        #expect(v.failures.map(\.rule).sorted() == ["identity.ek_chain", "identity.manufacturer"])
    }

    // 2. A software key signs next to a genuine EK certificate.
    @Test func aKeyWithoutTPMAttributesIsRefusedAsAnAK() async throws {
        var bundle = try RuleTests.bundle()
        var ak = try TPMTPublic(tpmtPublicBytes: try RuleTests.gceFile("ak_pub.tpmt_public.bin"))
        ak.objectAttributes.remove(.fixedTPM)  // what a key generated outside a TPM and imported looks like
        bundle.akPublic = Data(ak.marshalTPM2B()).base64EncodedString()
        let error = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0x90, 0x09], requiredSelection: TPMLPCRSelection([])).verify(bundle)
        }
        #expect(error?.code == .akAttributes)
        #expect(error?.reason.contains("fixedtpm") == true, "\(String(describing: error))")
    }

    @Test func earInstanceIdentityIsAffirmingOnlyWithABinding() async throws {
        let yaml = "identity:\n  ak_algorithms: [rsa-2048]\n"
        let unbound = EARAppraisal(try Self.verdict(yaml, await RuleTests.signed()))
        #expect(unbound.trustVector["instance-identity"] == 0, "\(unbound)")
        let bound = EARAppraisal(try Self.verdict(yaml, await RuleTests.signed(bound: true)))
        #expect(bound.trustVector["instance-identity"] == 2, "\(bound)")
    }

    @Test func anAKOtherThanTheBoundOneIsRefused() async throws {
        let stm = try RuleTests.ek("stm-rsa-ek-ca05-ffpadded.der")
        let other = AKBinding(
            akName: TPMName(bytes: [0, 0x0B] + [UInt8](repeating: 7, count: 32)),
            ekPublicKeySHA256: try AKBinding.fingerprint(of: stm.certificate.publicKey), activatedAt: nil)
        let error = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0x90, 0x09], requiredSelection: TPMLPCRSelection([]), akBinding: other)
                .verify(try RuleTests.bundle(ek: stm))
        }
        #expect(error?.code == .akNotBound)
    }

    // 8. The signature's scheme bound to the AK's.
    @Test func anAKWhoseSchemeIsNotTheSignaturesIsRefused() async throws {
        var bundle = try RuleTests.bundle()
        var ak = try TPMTPublic(tpmtPublicBytes: try RuleTests.gceFile("ak_pub.tpmt_public.bin"))
        guard case .rsa(var p) = ak.parameters else {
            Issue.record("GCE AK is not RSA")
            return
        }
        #expect(p.scheme == TPMTScheme(.rsassa, hashAlg: .sha256))
        p.scheme = TPMTScheme(.rsapss, hashAlg: .sha256)
        ak.parameters = .rsa(p)
        bundle.akPublic = Data(ak.marshalTPM2B()).base64EncodedString()
        let error = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0x90, 0x09], requiredSelection: TPMLPCRSelection([])).verify(bundle)
        }
        #expect(error?.code == .signatureSchemeMismatch, "\(String(describing: error))")
        #expect(error?.reason.contains("bound to rsapss/sha256") == true, "\(String(describing: error))")
    }

    @Test func theQuotesQualifiedSignerNamesTheAK() async throws {
        let e = try await RuleTests.signed()
        // GCE's AK is a primary key; its qualified name is H(hierarchy handle || Name) for one hierarchy.
        #expect(e.quote.signerHierarchy != nil, "the GCE quote's qualifiedSigner is not the AK's qualified name")
    }

    // 3. Event data edited under unchanged digests.
    @Test func editedSecureBootDataIsNotBelieved() async throws {
        let bytes = try Self.log()
        let parsed = try UnverifiedEventLog(bytes: bytes)
        let sb = try #require(
            parsed.events.first {
                $0.type == .efiVariableDriverConfig && DecodedEventData($0).summary.hasPrefix("SecureBoot")
            })
        var data = Array(sb.dataBytes)
        data[data.count - 1] ^= 1  // SecureBoot = 1 ↔ 0
        let e = try await RuleTests.signed(eventLog: LogEdit.replacingData(of: sb, in: bytes, with: data))
        for yaml in ["boot:\n  secure_boot: required\n", "boot:\n  secure_boot: forbidden\n"] {
            let v = try Self.verdict(yaml, e)
            let r = try #require(v.results.first { $0.rule == "boot.secure_boot" })
            #expect(r.status == .failed)
            #expect(r.event == sb.index && r.actual.contains("does not hash"), "\(r.actual)")
        }
        // The same evidence unedited passes.
        #expect(try Self.verdict("boot:\n  secure_boot: required\n", await RuleTests.signed()).pass)
    }

    @Test func aRetypedBootApplicationIsStillJudged() async throws {
        let bytes = try Self.log()
        let parsed = try UnverifiedEventLog(bytes: bytes)
        let app = try #require(parsed.events.first { $0.type == .efiBootServicesApplication })
        let e = try await RuleTests.signed(eventLog: LogEdit.retyping(app, in: bytes, to: .postCode))
        let honest = try await RuleTests.signed()
        let apps = honest.facts[.sha256]?.bootApplications.compactMap(\.digest) ?? []
        // Allow every application but the retyped one: it must still be found.
        let allowed = apps.filter { $0 != Hex.encode(app.digest(.sha256) ?? []) }
        let v = try Self.verdict("boot:\n  boot_applications:\n    allowed: [\(allowed.joined(separator: ", "))]\n", e)
        let r = try #require(v.results.first { $0.rule == "boot.boot_applications" })
        #expect(r.status == .failed && r.event == app.index, "\(r)")
    }

    // 4. A PCR hidden by removing all of its events; the device choosing what it quotes.
    @Test func aPCRWhoseEventsWereAllRemovedIsAMismatch() async throws {
        var bytes = try Self.log()
        let original = try UnverifiedEventLog(bytes: bytes)
        for e in original.events.reversed() where e.pcrIndex == 4 {
            bytes = LogEdit.removing(e, from: bytes, try UnverifiedEventLog(bytes: bytes))
        }
        let e = try await RuleTests.signed(eventLog: bytes)
        let mismatches = e.eventLog?.mismatches ?? []
        let m = try #require(mismatches.first { $0.pcr == 4 })
        #expect(m.explanation.contains("left out of the log"), "\(m.explanation)")
        let v = try Self.verdict(
            "boot:\n  boot_applications:\n    allowed: [\(String(repeating: "0", count: 64))]\n", e)
        let r = try #require(v.results.first { $0.rule == "boot.boot_applications" })
        #expect(r.status == .failed && r.pcr == 4)
    }

    @Test func aQuoteThatLeavesOutARequiredPCRIsRefused() async throws {
        var bundle = try RuleTests.bundle()
        bundle.pcrs["sha256"]?["7"] = nil  // values for a quote that would not cover PCR 7
        let required = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [7])])
        // The signed selection covers PCR 7, so dropping its value breaks the quote; a quote without it is refused.
        await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0x90, 0x09], requiredSelection: required).verify(bundle)
        }
        let sha384 = TPMLPCRSelection([TPMSPCRSelection(hash: .sha384, pcrs: [7])])
        let error = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0x90, 0x09], requiredSelection: sha384).verify(try RuleTests.bundle())
        }
        #expect(
            error?.code == .pcrSelectionMismatch && error?.reason.contains("sha384:7") == true,
            "\(String(describing: error))")
    }

    // 7. Fail-open defaults.
    @Test func theNonceIsNeverTakenFromTheBundle() async throws {
        let empty = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [], requiredSelection: TPMLPCRSelection([])).verify(
                try RuleTests.bundle())
        }
        #expect(empty?.code == .nonceMissing)
        var bundle = try RuleTests.bundle()
        // the bundle claims another nonce: irrelevant, the signed one is compared with the verifier's
        bundle.nonce = "0001"
        let wrong = await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0, 1], requiredSelection: TPMLPCRSelection([])).verify(bundle)
        }
        #expect(wrong?.code == .nonceMismatch)
    }

    @Test func aPolicyThatNamesOnlyBanksIsFlagged() throws {
        let p = try PolicyFixture.policy("id: t\nversion: 1\npcrs:\n  banks: [sha256]\n")
        #expect(!PolicyEngine.judgesBeyondSignature(p))
        #expect(
            PolicyEngine.judgesBeyondSignature(
                try PolicyFixture.policy("id: t\nversion: 1\nboot:\n  secure_boot: required\n")))
    }

    @Test func aRetypedErrorSeparatorIsStillAnErrorSeparator() throws {
        // A synthetic SHA-1 log whose PCR 0 separator says "error" (0x00000001), retyped to EV_POST_CODE
        // (whose digest is of other data) with its data edited to look harmless.
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var bytes: [UInt8] = []
        for (pcr, type, data, digestOf) in [
            (UInt32(0), UInt32(8), Array("fw 1.0".utf8), Array("fw 1.0".utf8)),
            (0, 1, Array("ok!!".utf8), [1, 0, 0, 0] as [UInt8]), (7, 4, [0, 0, 0, 0], [0, 0, 0, 0]),
        ] {
            bytes += le32(pcr) + le32(type) + (try TPMDigest.hash(.sha1, digestOf)) + le32(UInt32(data.count)) + data
        }
        let e = UnsignedEvidence(eventLog: try UnverifiedEventLog(bytes: bytes))
        let v = PolicyEngine.evaluate(
            e,
            try PolicyFixture.policy(
                "id: t\nversion: 1\npcrs:\n  banks: [sha1]\n  sha1:\n    \"0\": replay\nboot:\n  forbid: [error_separators]\n"
            ))
        let r = try #require(v.results.first { $0.rule == "boot.forbid.error_separators" })
        #expect(r.status == .failed && r.event == 1, "\(r)")
    }

    @Test func referenceSetsAreCanonicalForDigestsAndExactForStrings() throws {
        let digest = String(repeating: "AB", count: 32)
        let p = try PolicyFixture.policy(
            """
            id: t
            version: 1
            reference_sets:
              apps: ["0x\(digest)"]
              versions: ["GCE Virtual Firmware v1"]
            boot:
              boot_applications:
                allowed: ["@apps"]
              scrtm_versions: ["@versions"]
            """)
        #expect(p.boot?.bootApplications?.allowed == [digest.lowercased()])
        #expect(p.boot?.sCRTMVersions == ["GCE Virtual Firmware v1"])
        #expect(throws: PolicyError.self) {
            try PolicyFixture.policy(
                "id: t\nversion: 1\nreference_sets:\n  apps: [nothex]\nboot:\n  boot_applications:\n    allowed: [\"@apps\"]\n"
            )
        }
    }

    // 8. Smaller findings.
    @Test func kernelCommandLinesAreReadAsTheKernelReadsThem() throws {
        let line = KernelCommandLine("ro\tquiet  init=\"/bin/sh\" systemd.unit=rescue.target single 1 rd-break")
        #expect(
            line.arguments.map(\.text) == [
                "ro", "quiet", "init=/bin/sh", "systemd.unit=rescue.target", "single", "1", "rd-break",
            ])
        #expect(line.contains("init", anyValue: true))  // a tab and quotes do not hide it
        #expect(line.contains("rd_break", anyValue: true))  // the kernel treats - and _ alike in names
        #expect(line.contains("1", anyValue: true))
    }

    @Test func anAbsurdPCRRangeIsRefusedNotMaterialised() {
        #expect(TPMLPCRSelection(parsingSpec: "sha256:0-9223372036854775807") == nil)
        #expect(TPMLPCRSelection(parsingSpec: "sha256:0-23")?.pcrCount == 24)
    }
}
