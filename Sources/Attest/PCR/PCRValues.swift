/// PCR values per bank: what a TPM reported (TPM2_PCR_Read) or a quote's companion file claims.
///
/// Untrusted until the quote's PCR digest has been recomputed over them.
public struct PCRValues: Hashable, Sendable {
    /// bank → PCR index → digest.
    public private(set) var banks: [TPMAlgorithmID: [Int: [UInt8]]]

    /// Wraps per-bank values as given; nothing is checked.
    public init(banks: [TPMAlgorithmID: [Int: [UInt8]]] = [:]) { self.banks = banks }

    /// The value of `pcr` in `bank`, or nil when none was reported; setting nil removes it.
    public subscript(bank: TPMAlgorithmID, pcr: Int) -> [UInt8]? {
        get { banks[bank]?[pcr] }
        set { banks[bank, default: [:]][pcr] = newValue }
    }

    /// The values in the order of `selection` (banks in order, PCRs ascending), as TPM2_Quote digests them.
    /// Nil when a selected PCR has no value.
    public func ordered(by selection: TPMLPCRSelection) -> [[UInt8]]? {
        var out: [[UInt8]] = []
        for s in selection.selections {
            for pcr in s.pcrs {
                guard let v = banks[s.hash]?[pcr] else { return nil }
                out.append(v)
            }
        }
        return out
    }

    /// The quote's pcrDigest: H_alg(concatenation of the selected values in selection order) (Part 3 §18.4).
    public func digest(for selection: TPMLPCRSelection, hashAlg: TPMAlgorithmID) throws(AttestError) -> [UInt8] {
        guard let values = ordered(by: selection) else {
            throw AttestError(code: .invalidValue, reason: "PCR values: a PCR selected by \(selection) has no value")
        }
        return try TPMDigest.hash(hashAlg, values.flatMap { $0 })
    }

    /// `{"sha256": {"0": "hex", …}, …}` (the JSON Vigil prints and accepts).
    public var jsonObject: [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for (bank, values) in banks {
            out[bank.name] = Dictionary(uniqueKeysWithValues: values.map { (String($0.key), Hex.encode($0.value)) })
        }
        return out
    }

    /// Parses the JSON shape of ``jsonObject``. Values must be hex of the bank's digest size.
    public init(jsonObject: [String: [String: String]]) throws(AttestError) {
        var banks: [TPMAlgorithmID: [Int: [UInt8]]] = [:]
        for (bankName, values) in jsonObject {
            guard let bank = TPMAlgorithmID(name: bankName), let size = bank.digestSize else {
                throw AttestError(code: .unknownAlgorithm, reason: "PCR values: unknown bank \"\(bankName)\"")
            }
            for (key, hex) in values {
                guard let index = Int(key), (0..<32).contains(index) else {
                    throw AttestError.invalid("PCR values: \(bankName) key \"\(key)\" is not a PCR index 0–31")
                }
                guard let bytes = Hex.decode(hex), bytes.count == size else {
                    throw AttestError.invalid("PCR values: \(bankName)[\(index)] is not \(size) bytes of hex")
                }
                banks[bank, default: [:]][index] = bytes
            }
        }
        self.banks = banks
    }
}
