import Attest
import Dispatch
import Foundation
import Policy

/// The verifier's front door on arbitrary bytes: evidence bundles (JSON) through ``EvidenceVerifier`` and a policy,
/// credential challenge files (what a device reads), AK binding records, and TPM2_MakeCredential on an untrusted
/// EK public area. Seeds: Fuzz/seeds/FuzzEvidence (a real signed swtpm bundle, its challenge and binding).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let bundle = try? EvidenceBundle(json: bytes) {
        verify(bundle)
        _ = try? CredentialChallenge.make(for: bundle, secret: [UInt8](repeating: 7, count: 32))
    }
    if let challenge = try? CredentialChallenge(json: bytes) {
        _ = try? challenge.json()
        _ = try? challenge.binding(response: [1], expected: [1], activatedAt: Date(timeIntervalSince1970: 0))
    }
    if let binding = try? AKBinding(json: bytes) { _ = try? binding.json() }
    if let ek = try? TPMTPublic(tpmPublicBytes: bytes) {
        _ = try? CredentialChallenge.make(
            ekPublic: ek, akName: Fixtures.akName, secret: [UInt8](repeating: 9, count: 16))
    }
    return 0
}

/// Verifies with the bundle's own nonce (so mutations reach past the nonce check; a verifier never does this),
/// the fixture EK anchors, a binding to the bundle's own AK, and a previous quote; then evaluates a policy.
func verify(_ bundle: EvidenceBundle) {
    guard let nonce = Hex.decode(bundle.nonce), !nonce.isEmpty else { return }
    var binding: AKBinding?
    if let d = try? bundle.decoded(), let ak = try? AKPublic(d.ak), let name = ak.name {
        let fingerprint =
            d.ek.flatMap { try? AKBinding.fingerprint(of: $0.certificate.publicKey) }
            ?? String(repeating: "0", count: 64)
        binding = AKBinding(akName: name, ekPublicKeySHA256: fingerprint, activatedAt: nil)
    }
    let verifier = EvidenceVerifier(
        nonce: nonce, nonceIssuedAt: Date(timeIntervalSince1970: 1_790_000_000),
        requiredSelection: TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [0, 4, 7])]),
        anchors: Fixtures.anchors(), akBinding: binding,
        previous: PreviousQuote(
            clockInfo: TPMSClockInfo(clock: 1, resetCount: 1, restartCount: 0, safe: true),
            firmwareVersion: 0),
        now: Date(timeIntervalSince1970: 1_790_000_000))
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox()
    Task {
        box.evidence = try? await verifier.verify(bundle)
        done.signal()
    }
    done.wait()
    if let evidence = box.evidence, let policy = Fixtures.policy() {
        let verdict = PolicyEngine.evaluate(evidence, policy)
        _ = EARAppraisal(verdict)
        _ = PolicyCapture.yaml(from: evidence, id: "fuzz", source: "fuzz")
    }
}

/// Hands the verifier's result from its task to the fuzzing thread, which waits on a semaphore.
final class ResultBox: @unchecked Sendable {
    // @unchecked Sendable: written once by the task before it signals, read by the waiting thread after.
    var evidence: VerifiedEvidence?
}

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../../Tests"
    ).standardized
    // Built per input, not kept in a global: LeakSanitizer cannot follow Swift's packed references from a global
    // and reports the certificates held there as leaked.
    static func anchors() -> EKTrustAnchors? {
        try? EKTrustAnchors(folder: root.appendingPathComponent("../swtpm-fixtures/ca").standardized.path)
    }
    static let akName = TPMName(bytes: [0x00, 0x0B] + [UInt8](repeating: 0xA5, count: 32))
    static func policy() -> AttestationPolicy? {
        let yaml = """
            id: fuzz
            version: 1
            identity:
              ek_certificate: required
              ek_ca: ca
              manufacturers: ["id:00001014"]
              ak_algorithms: [ecc-p256, rsa-2048]
            freshness:
              max_nonce_age_seconds: 120
              allow_reboot: true
            pcrs:
              banks: [sha256, sha1]
              sha256:
                "0": replay
                "7": replay
            boot:
              secure_boot: required
              dbx:
                min_entries: 1
              boot_applications:
                allowed: [\(String(repeating: "ab", count: 32))]
              kernel_cmdline:
                forbidden: [init, single, "1"]
              forbid: [error_separators, uefi_debug_mode, events_after_exit_boot_services]
              scrtm_versions: ["GCE Virtual Firmware v1"]
            """
        guard var p = try? PolicyLoader.parse(yaml, file: "fuzz.yaml"), (try? PolicyLoader.resolveForTesting(&p)) != nil
        else { return nil }
        return p
    }
}
