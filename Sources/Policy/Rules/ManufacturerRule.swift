import Attest
import Foundation

/// `identity.manufacturers`: the TPM's manufacturer, read only from an EK certificate that chains to a trusted CA
/// and is bound to the AK.
struct ManufacturerRule: PolicyRule {
    let allowed: [String]
    var id: RuleID { .manufacturer }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = "one of \(allowed.joined(separator: ", "))"
        guard let m = e.ekCertificate?.tpmManufacturer else {
            add(id, .failed, expected, "unknown (no EK certificate with a TPM manufacturer)", nil, nil, nil)
            return
        }
        let ascii = PolicyEngine.manufacturerASCII(m)
        if let unbound = e.identityUnbound {
            add(id, .failed, expected, unbound, nil, nil, nil)
        } else if !e.ekChainValid {
            add(
                id, .failed, expected,
                "\(ascii) claimed by an EK certificate that does not chain to a trusted EK CA (identity.ek_ca)", nil,
                nil,
                nil)
        } else {
            let ok = allowed.contains {
                $0.caseInsensitiveCompare(m) == .orderedSame || $0.caseInsensitiveCompare(ascii) == .orderedSame
            }
            add(id, ok ? .passed : .failed, expected, "\(m) (\(ascii))", nil, nil, nil)
        }
    }
}
