import Attest
import Policy

/// Policy documents (YAML → policy → references) and evidence bundles (JSON) on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    if var policy = try? PolicyLoader.parse(text, file: "fuzz.yaml") {
        if (try? PolicyLoader.resolveForTesting(&policy)) != nil {
            _ = PolicyExplainer.text(policy)
            _ = PolicyEngine.ruleIDs(of: policy)
        }
    }
    if let bundle = try? EvidenceBundle(json: bytes) {
        _ = try? bundle.decoded()
    }
    // Authoring input: a bare log through the same facts and engine as verified evidence.
    if let log = try? UnverifiedEventLog(bytes: bytes) {
        _ = PolicyCapture.yaml(from: UnsignedEvidence(eventLog: log), id: "fuzz", source: "fuzz")
    }
    return 0
}
