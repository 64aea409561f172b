import BigInt
import Foundation

/// RSAES-OAEP encryption with a label — RFC 8017 §7.1.1 (EME-OAEP encoding, MGF1, then RSAEP).
///
/// swift-crypto's OAEP takes no label, and TPM 2.0 needs one: a secret encrypted to an RSA storage key
/// carries the label of its use ("IDENTITY", "DUPLICATE", "SECRET", NUL included; Part 1 §B.10.3,
/// Part 1 §24.4). The hash of the label, MGF1 and the OAEP seed is the key's nameAlg. Public inputs only:
/// this is encryption to a public key, with no private-key operation and so no timing secret beyond
/// the message, which is masked before the modular exponentiation.
enum RSAOAEP {
    /// The smallest modulus accepted (EK templates are 2048-bit; smaller keys are not worth a credential).
    static let minModulusBits = 2048

    /// Encrypts `message` to the RSA public key (`modulus`, `exponent`).
    ///
    /// - Parameters:
    ///   - label: the OAEP label L, as hashed (include the TPM's terminating NUL).
    ///   - oaepSeed: the random seed of EME-OAEP, exactly one digest long (the caller draws it).
    /// - Returns: the ciphertext, exactly as long as the modulus.
    static func encrypt(
        _ message: [UInt8], label: [UInt8], hashAlg: TPMAlgorithmID, modulus: [UInt8], exponent: UInt32,
        oaepSeed: [UInt8]
    ) throws(AttestError) -> [UInt8] {
        guard let hLen = hashAlg.digestSize, TPMKDF.isSupported(hashAlg) else {
            throw AttestError(code: .unknownAlgorithm, reason: "RSA-OAEP: hash algorithm \(hashAlg) is not supported")
        }
        let n = Array(modulus.drop { $0 == 0 })
        let k = n.count
        guard k * 8 >= minModulusBits, k <= TPMTPublic.maxRSAModulusSize else {
            throw AttestError(
                code: .unsupportedStructure,
                reason:
                    "RSA-OAEP: a \(k * 8)-bit modulus is not supported (\(minModulusBits) to \(TPMTPublic.maxRSAModulusSize * 8) bits)"
            )
        }
        guard let last = n.last, last & 1 == 1 else { throw AttestError.invalid("RSA-OAEP: the modulus is even") }
        guard exponent >= 3, exponent & 1 == 1 else {
            throw AttestError.invalid("RSA-OAEP: public exponent \(exponent) is not an odd number ≥ 3")
        }
        guard oaepSeed.count == hLen else { throw AttestError.invalid("RSA-OAEP: the seed must be \(hLen) bytes") }
        // k ≥ 256 and hLen ≤ 64, so the subtraction cannot go negative.
        let maxMessage = k - 2 * hLen - 2
        guard message.count <= maxMessage else {
            throw AttestError(
                code: .sizeLimitExceeded,
                reason:
                    "RSA-OAEP: a \(message.count)-byte message exceeds the \(maxMessage) bytes a \(k * 8)-bit key can carry"
            )
        }

        // EME-OAEP encoding, RFC 8017 §7.1.1 step 2.
        let lHash = try TPMDigest.hash(hashAlg, label)
        var db = lHash
        db += [UInt8](repeating: 0, count: maxMessage - message.count)
        db.append(0x01)
        db += message
        let dbMask = try mgf1(hashAlg, seed: oaepSeed, length: k - hLen - 1)
        let maskedDB = zip(db, dbMask).map { $0 ^ $1 }
        let seedMask = try mgf1(hashAlg, seed: maskedDB, length: hLen)
        let maskedSeed = zip(oaepSeed, seedMask).map { $0 ^ $1 }
        let em = [0x00] + maskedSeed + maskedDB

        // RSAEP, RFC 8017 §5.1.1: c = m^e mod n. EM starts with 0x00, so m < 2^(8(k−1)) ≤ n.
        let c = BigUInt(Data(em)).power(BigUInt(exponent), modulus: BigUInt(Data(n)))
        let raw = Array(c.serialize())
        guard raw.count <= k else {
            throw AttestError(code: .cryptography, reason: "RSA-OAEP: ciphertext longer than the modulus")
        }
        return [UInt8](repeating: 0, count: k - raw.count) + raw
    }

    /// MGF1 — RFC 8017 §B.2.1: `H(seed || [0]₃₂) || H(seed || [1]₃₂) || …`, truncated to `length`.
    static func mgf1(_ hashAlg: TPMAlgorithmID, seed: [UInt8], length: Int) throws(AttestError) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt32 = 0
        while out.count < length {
            var block = ByteWriter()
            block.append(bytes: seed)
            block.append(counter)
            out += try TPMDigest.hash(hashAlg, block.bytes)
            counter += 1  // length ≤ maxRSAModulusSize: a few blocks, cannot overflow
        }
        return Array(out.prefix(length))
    }
}
