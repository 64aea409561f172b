/// Verifies TPM2_Quote results (go-attestation's `AKPublic.Verify`, done in this fixed order):
///
/// 1. the signature over the exact attest bytes, with the attestation key, in the scheme and hash the key
///    is bound to;
/// 2. decode: magic TPM_GENERATED_VALUE and type TPM_ST_ATTEST_QUOTE (only after the signature, so
///    nothing unsigned is parsed deeply), and qualifiedSigner names the attestation key;
/// 3. the nonce (qualifyingData), in constant time;
/// 4. the PCR selection equals the expected one, both ways;
/// 5. the PCR digest equals the hash of the supplied values in selection order;
/// 6. the clock and counters against the previous accepted quote (findings, not failures).
///
/// Pure, `Sendable`, and cheap to call from many concurrent requests.
public struct QuoteVerifier: Sendable {
    /// The attestation key quotes must be signed with, already validated.
    public let ak: AKPublic

    /// Uses an attestation key already prepared with ``AKPublic/init(_:)``.
    public init(ak: AKPublic) {
        self.ak = ak
    }

    /// Prepares the attestation key once; reuse the verifier for every quote of that device.
    public init(akPublic: TPMTPublic) throws(AttestError) {
        self.ak = try AKPublic(akPublic)
    }

    /// - Parameters:
    ///   - attest: the TPMS_ATTEST bytes as signed.
    ///   - signature: the TPMT_SIGNATURE bytes.
    ///   - nonce: the single-use nonce the verifier issued.
    ///   - pcrs: the PCR values the device reported; must cover exactly the quoted PCRs.
    ///   - expectedSelection: what was asked for; nil to accept the PCRs supplied in `pcrs` as the request.
    ///   - previous: the device's previous accepted quote, as the verifier stored it, for clock and counter findings.
    public func verify(
        attest: [UInt8], signature: [UInt8], nonce: [UInt8], pcrs: PCRValues,
        expectedSelection: TPMLPCRSelection? = nil, previous: PreviousQuote? = nil
    ) throws(AttestError) -> VerifiedQuote {
        guard !nonce.isEmpty else {
            throw AttestError(
                code: .nonceMissing,
                reason:
                    "quote: no nonce to check against (the verifier must issue one; an empty nonce proves no freshness)"
            )
        }
        // 1. Signature over the raw bytes, in the AK's own scheme.
        let sig = try TPMTSignature(bytes: signature)
        try ak.checkScheme(of: sig)
        guard ak.isValidSignature(sig, for: attest) else {
            throw AttestError(
                code: .signatureInvalid,
                reason: "quote: the \(sig.algorithm)/\(sig.hashAlg) signature does not verify with the attestation key")
        }
        // 2. Decode and check origin and type.
        let decoded: TPMSAttest
        do {
            decoded = try TPMSAttest(bytes: attest)
        } catch  where error.code == .unsupportedStructure {
            throw AttestError(code: .notAQuote, reason: "quote: \(error.reason)")
        }
        guard case .quote(let selection, let digest) = decoded.attested else {
            throw AttestError(
                code: .notAQuote, reason: "quote: the signed structure is a TPM2_Certify result, not a quote")
        }
        let hierarchy = try Self.signerHierarchy(decoded.qualifiedSigner, ak: ak)
        // 3. Nonce.
        guard constantTimeEquals(decoded.extraData, nonce) else {
            throw AttestError(
                code: .nonceMismatch,
                reason:
                    "quote: the signed nonce \(Hex.encode(decoded.extraData)) is not the verifier's nonce \(Hex.encode(nonce))"
            )
        }
        // 4. Selection, both ways: what was asked for was quoted, and every supplied value was quoted. Compared as
        // one PCR bitmap per bank (no sets or sorting on the success path).
        let quotedMasks = Self.masks(selection)
        let expectedMasks: [UInt16: UInt32]? =
            expectedSelection.map(Self.masks) ?? Self.masks(pcrs)
        guard let expectedMasks, quotedMasks == expectedMasks else {
            let expected =
                expectedSelection
                ?? TPMLPCRSelection(
                    pcrs.banks.keys.sorted().map {
                        TPMSPCRSelection(hash: $0, pcrs: pcrs.banks[$0]?.keys.sorted() ?? [])
                    })
            throw AttestError(
                code: .pcrSelectionMismatch,
                reason:
                    "quote: the TPM quoted \(selection.nonEmpty.isEmpty ? "no PCRs" : selection.description), but \(expected.description) was asked for"
            )
        }
        guard !selection.nonEmpty.isEmpty else {
            throw AttestError(code: .pcrSelectionMismatch, reason: "quote: the quote covers no PCRs")
        }
        var suppliedCount = 0
        for values in pcrs.banks.values { suppliedCount += values.count }
        // 5. PCR digest over the supplied values in selection order, hashed with the signing scheme's hash
        // (TPM 2.0 Part 3 §18.4). Missing or wrongly sized values are named.
        var hasher = try PCRDigestHasher(sig.hashAlg)
        for s in selection.selections {
            for pcr in s.pcrs {
                guard let v = pcrs[s.hash, pcr] else {
                    throw AttestError(
                        code: .pcrValuesMissing, reason: "quote: no value supplied for quoted PCR \(s.hash.name):\(pcr)"
                    )
                }
                guard v.count == s.hash.digestSize else {
                    throw AttestError.invalid(
                        "quote: the value for \(s.hash.name):\(pcr) is \(v.count) bytes, not \(s.hash.digestSize ?? 0)")
                }
                hasher.update(v)
            }
        }
        guard suppliedCount == selection.pcrCount else {
            let extra = pcrs.banks.flatMap { bank, values in
                values.keys.filter { pcr in !selection.selections.contains { $0.hash == bank && $0.pcrs.contains(pcr) }
                }.map { "\(bank.name):\($0)" }
            }
            throw AttestError(
                code: .pcrSelectionMismatch,
                reason:
                    "quote: values were supplied for \(extra.sorted().joined(separator: ", ")), which the TPM did not quote"
            )
        }
        let computed = hasher.finalize()
        let hashAlg = sig.hashAlg
        guard digest.count == computed.count, constantTimeEquals(computed, digest) else {
            throw AttestError(
                code: .pcrDigestMismatch,
                reason:
                    "quote: the PCR values hash to \(Hex.encode(computed)), but the TPM signed \(Hex.encode(digest)) (\(hashAlg.name) over \(selection))"
            )
        }
        let quoted = pcrs
        // 6. Clock and counters.
        let findings = Self.clockFindings(decoded, previous: previous)
        return VerifiedQuote(
            attest: decoded, selection: selection, pcrs: quoted, pcrDigest: digest, clockFindings: findings,
            comparedWithPrevious: previous != nil, signerHierarchy: hierarchy)
    }

    /// Checks TPMS_ATTEST.qualifiedSigner against the attestation key (Part 1 §16 "Qualified Name":
    /// QN(key) = nameAlg || H_nameAlg(QN(parent) || Name(key)), and a hierarchy's QN is its handle).
    /// For a primary key the QN is computed for each hierarchy and must equal one of them; the result
    /// names it. For a key under another key the parent's QN is not known to the verifier, so the QN
    /// must at least be a digest of the key's name algorithm (nil is returned).
    static func signerHierarchy(_ qn: TPMName, ak: AKPublic) throws(AttestError) -> TPMHierarchy? {
        // A bare public key has no Name to compare with (`vigil quote verify --ak key.pem` says so).
        guard let name = ak.name else { return nil }
        let nameAlg = ak.publicArea.nameAlg
        for h in TPMHierarchy.allCases {
            var w = ByteWriter()
            w.append(h.rawValue)
            w.append(bytes: name.bytes)
            var expected = ByteWriter()
            expected.append(nameAlg.rawValue)
            expected.append(bytes: try TPMDigest.hash(nameAlg, w.bytes))
            if constantTimeEquals(expected.bytes, qn.bytes) { return h }
        }
        let tagged = qn.bytes.count >= 2 ? UInt16(qn.bytes[0]) << 8 | UInt16(qn.bytes[1]) : 0
        guard tagged == nameAlg.rawValue, qn.bytes.count == 2 + (nameAlg.digestSize ?? -1) else {
            throw AttestError(
                code: .qualifiedSignerMismatch,
                reason:
                    "quote: qualifiedSigner \(qn) is not a \(nameAlg.name) qualified name of the attestation key \(name)"
            )
        }
        return nil
    }

    /// One bitmap of selected PCRs per bank (banks with none left out), whatever the order and bitmap width.
    static func masks(_ s: TPMLPCRSelection) -> [UInt16: UInt32] {
        var out: [UInt16: UInt32] = [:]
        for sel in s.selections {
            for pcr in sel.pcrs where (0..<32).contains(pcr) { out[sel.hash.rawValue, default: 0] |= 1 << UInt32(pcr) }
        }
        return out
    }

    /// The bitmaps of supplied PCR values; nil when a value is for a PCR no selection can name (32 or more).
    static func masks(_ values: PCRValues) -> [UInt16: UInt32]? {
        var out: [UInt16: UInt32] = [:]
        for (bank, byPCR) in values.banks where !byPCR.isEmpty {
            var mask: UInt32 = 0
            for pcr in byPCR.keys {
                guard (0..<32).contains(pcr) else { return nil }
                mask |= 1 << UInt32(pcr)
            }
            out[bank.rawValue] = mask
        }
        return out
    }

    /// Clock and counter findings of `attest` compared with `previous` (step 6 on its own).
    public static func clockFindings(_ attest: TPMSAttest, previous: PreviousQuote?) -> [ClockFinding] {
        var findings: [ClockFinding] = []
        let now = attest.clockInfo
        if !now.safe { findings.append(.clockNotSafe) }
        guard let previous else { return findings }
        let before = previous.clockInfo
        if now.resetCount < before.resetCount
            || (now.resetCount == before.resetCount && now.restartCount < before.restartCount)
        {
            findings.append(.countersWentBackwards)
        } else if now.resetCount > before.resetCount {
            findings.append(.rebooted(from: before.resetCount, to: now.resetCount))
        } else if now.restartCount > before.restartCount {
            findings.append(.restarted(from: before.restartCount, to: now.restartCount))
        } else if now.clock < before.clock {
            findings.append(.clockWentBackwards(from: before.clock, to: now.clock))
        }
        if attest.firmwareVersion != previous.firmwareVersion {
            findings.append(.firmwareChanged(from: previous.firmwareVersion, to: attest.firmwareVersion))
        }
        return findings
    }
}
