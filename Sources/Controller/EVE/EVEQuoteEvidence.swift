public import Attest
import CompressNIO
public import ControllerProtocol
import Crypto
public import EVEAPI
public import Foundation
import NIOCore

/// An EVE quote (`ZAttestQuote`, attest.proto) in the form Vigil's verifier reads (``EvidenceBundle``), with the
/// AK the controller holds for the device. Nothing in it is believed yet: ``EvidenceVerifier`` checks it.
///
/// What EVE sends and how it is read:
/// - `attestData`: the TPMS_ATTEST the AK signed (TPM 2.0 Part 2 §10.12.12). It must be a quote over at least one
///   PCR: "a quote with no PCRs" (which Adam counts as success) is refused here.
/// - `signature`: ASN.1 DER ECDSA (EVE's tpmmgr marshals go-tpm's r and s with `asn1.Marshal`), converted to the
///   TPMT_SIGNATURE the TPM produced, in the AK's scheme; a TPMT_SIGNATURE (an RSA AK) is taken as is.
/// - `pcr_values`: PCR index, bank and value; each PCR once, indexes 0–23, values of the bank's digest size.
/// - `tpm_binary_event_log`: the TCG event log, gzip-compressed (RFC 1952), at most ``maximumEventLog`` bytes
///   once decompressed. The deprecated `event_log` (already-parsed entries) is ignored: parsed entries prove
///   nothing a verifier could replay.
public struct EVEQuoteEvidence: Sendable {
    /// The largest event log accepted after decompression.
    public static let maximumEventLog = 4 << 20

    /// The evidence, for ``EvidenceVerifier``.
    public let bundle: EvidenceBundle
    /// The quote's `extraData`: the nonce the device says it quoted, used only to find the controller's record.
    public let claimedNonce: [UInt8]

    /// Reads `quote` for the device `deviceID`, whose AK public area the controller holds (`ak`), with the EK
    /// certificate it uploaded (DER, if any).
    public init(
        _ quote: Org_Lfedge_Eve_Attest_ZAttestQuote, ak: TPMTPublic, ekCertificate: [UInt8]?, deviceID: DeviceID,
        now: Date
    ) throws(ControllerError) {
        let attestBytes = Array(quote.attestData)
        guard !attestBytes.isEmpty else { throw .evidence("quote_missing", "ZAttestQuote: attestData is empty") }
        let attest: TPMSAttest
        do { attest = try TPMSAttest(bytes: attestBytes) } catch {
            throw .evidence("quote_malformed", "ZAttestQuote.attestData: not a TPMS_ATTEST: \(error.reason)")
        }
        guard case .quote(let selection, _) = attest.attested else {
            throw .evidence(
                "quote_malformed", "ZAttestQuote.attestData: not a quote (type 0x\(String(attest.type, radix: 16)))")
        }
        guard !selection.nonEmpty.isEmpty else {
            throw .evidence("quote_no_pcrs", "ZAttestQuote: the quote covers no PCR: a quote that proves nothing")
        }
        guard !quote.pcrValues.isEmpty else {
            throw .evidence("quote_no_pcrs", "ZAttestQuote: pcr_values is empty: a quote that proves nothing")
        }
        claimedNonce = attest.extraData
        let pcrs = try Self.pcrValues(quote.pcrValues)
        let signature = try Self.signature(Array(quote.signature), ak: ak)
        let log = try Self.eventLog(Array(quote.tpmBinaryEventLog))
        bundle = EvidenceBundle(
            deviceID: deviceID.rawValue, nonce: attest.extraData, attest: attestBytes, signature: signature,
            pcrs: pcrs, akPublic: ak, ekCertificate: ekCertificate, deviceCertificate: nil, eventLog: log,
            collectedAt: now)
    }

    /// `pcr_values` → banks of PCR values.
    static func pcrValues(_ values: [Org_Lfedge_Eve_Attest_TpmPCRValue]) throws(ControllerError) -> PCRValues {
        guard values.count <= 3 * 24 else {
            throw .evidence(
                "pcrs_malformed", "ZAttestQuote: \(values.count) PCR values (at most 72: three banks of 24)")
        }
        var banks: [TPMAlgorithmID: [Int: [UInt8]]] = [:]
        for (i, v) in values.enumerated() {
            let bank: TPMAlgorithmID
            switch v.hashAlgo {
            case .sha1: bank = .sha1
            case .sha256: bank = .sha256
            case .sha512: bank = .sha512
            default:
                throw .evidence(
                    "pcrs_malformed",
                    "ZAttestQuote.pcr_values[\(i)]: hash_algo \(v.hashAlgo.rawValue) is not SHA-1, SHA-256 or SHA-512")
            }
            guard v.index < 24 else {
                throw .evidence("pcrs_malformed", "ZAttestQuote.pcr_values[\(i)]: PCR index \(v.index) (0–23)")
            }
            guard v.value.count == bank.digestSize else {
                throw .evidence(
                    "pcrs_malformed",
                    "ZAttestQuote.pcr_values[\(i)]: PCR \(v.index) \(bank.name) is \(v.value.count) bytes, not \(bank.digestSize ?? 0)"
                )
            }
            guard banks[bank]?[Int(v.index)] == nil else {
                throw .evidence(
                    "pcrs_malformed", "ZAttestQuote.pcr_values[\(i)]: PCR \(v.index) \(bank.name) is given twice")
            }
            banks[bank, default: [:]][Int(v.index)] = Array(v.value)
        }
        return PCRValues(banks: banks)
    }

    /// The quote's signature as a TPMT_SIGNATURE (TPM 2.0 Part 2 §11.3.4).
    static func signature(_ bytes: [UInt8], ak: TPMTPublic) throws(ControllerError) -> [UInt8] {
        guard !bytes.isEmpty, bytes.count <= TPMTSignature.maxSize else {
            throw .evidence("signature_invalid", "ZAttestQuote.signature is \(bytes.count) bytes")
        }
        if case .ecc(let ecc) = ak.parameters, bytes.first == 0x30 {
            let raw: [UInt8]?
            switch ecc.curve {
            case .nistP256:
                raw = (try? P256.Signing.ECDSASignature(derRepresentation: bytes)).map { Array($0.rawRepresentation) }
            case .nistP384:
                raw = (try? P384.Signing.ECDSASignature(derRepresentation: bytes)).map { Array($0.rawRepresentation) }
            default: raw = nil
            }
            if let raw {
                let half = raw.count / 2
                let hash = ecc.scheme.hashAlg == .null ? TPMAlgorithmID.sha256 : ecc.scheme.hashAlg
                return TPMTSignature(
                    algorithm: .ecdsa, hashAlg: hash, body: .ecc(r: Array(raw.prefix(half)), s: Array(raw.suffix(half)))
                ).marshal()
            }
        }
        do { return try TPMTSignature(bytes: bytes).marshal() } catch {
            throw .evidence(
                "signature_invalid",
                "ZAttestQuote.signature is neither an ASN.1 DER ECDSA signature for the AK's curve nor a TPMT_SIGNATURE (\(error.reason))"
            )
        }
    }

    /// `tpm_binary_event_log`, decompressed (nil when the device sent none).
    static func eventLog(_ gzip: [UInt8]) throws(ControllerError) -> [UInt8]? {
        guard !gzip.isEmpty else { return nil }
        var buffer = ByteBuffer(bytes: gzip)
        do {
            let out = try buffer.decompress(with: .gzip(), maxSize: maximumEventLog)
            return Array(out.readableBytesView)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw .evidence(
                "eventlog_too_large",
                "ZAttestQuote.tpm_binary_event_log: more than \(maximumEventLog) bytes once decompressed")
        } catch {
            throw .evidence("eventlog_malformed", "ZAttestQuote.tpm_binary_event_log: not gzip data (\(error))")
        }
    }
}
