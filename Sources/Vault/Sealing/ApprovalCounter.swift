import Attest
public import AttestTPM

/// The device's vault approval counter: an NV counter (TPM_NT_COUNTER) at ``index`` whose value is the current
/// approval *epoch*. A signed approval pins the counter to at most its epoch (TPM2_PolicyNV, unsigned ≤), so
/// `vigil vault revoke-approvals` (TPM2_NV_Increment) makes every earlier approval unusable, in the TPM.
///
/// Why a counter: it only grows, and the TPM starts a new counter above any value a counter of this TPM ever had
/// (Part 1 §37.2.3), so even someone who can delete and redefine the index (the owner hierarchy's authorization,
/// empty on most devices) cannot bring an old epoch back. It is authorized by its own empty auth value: anyone on
/// the device may increment it, which can only revoke approvals (a denial of service the escrow recovers from),
/// never revive one.
public enum ApprovalCounter {
    /// Vigil's NV index for it (owner range, next to the device certificate at 0x01800100).
    public static let index = TPMHandle(0x0180_0110)
    /// TPM_NT_COUNTER in TPMA_NV's TPM_NT field (bits 4–7).
    static let typeCounter = TPMSNVPublic.Attributes(rawValue: 1 << 4)

    /// The counter's state: its value (the current epoch) and its Name (which approvals bind).
    public struct State: Sendable, Hashable {
        /// The current epoch.
        public var epoch: UInt64
        /// The index's Name (hex), with TPMA_NV_WRITTEN set.
        public var name: String
    }

    /// Reads the counter, defining and incrementing it first when the TPM does not have it yet.
    public static func ensure(tpm: TPM) async throws(VaultError) -> State {
        do {
            var pub = try await tpm.nvReadPublic(index)
            if pub == nil {
                try await tpm.nvDefineSpace(
                    TPMSNVPublic(
                        nvIndex: index.rawValue, nameAlg: .sha256,
                        attributes: [typeCounter, .authWrite, .authRead, .noDA], dataSize: 8))
                pub = try await tpm.nvReadPublic(index)
            }
            // Defined but never incremented (a crash between the two): increment it now.
            if let pub, !pub.attributes.contains(.written) {
                try await tpm.nvIncrement(index, authorization: .index(nil))
            }
        } catch { throw VaultError(reason: "vault: cannot set up the approval counter: \(error.reason)", tpm: error) }
        return try await read(tpm: tpm)
    }

    /// The counter's value and Name; refuses an index that is not a written 8-byte counter of Vigil's shape.
    public static func read(tpm: TPM) async throws(VaultError) -> State {
        do {
            guard let pub = try await tpm.nvReadPublic(index) else {
                throw VaultError(reason: "vault: this TPM has no approval counter at \(index)")
            }
            guard pub.attributes.rawValue & 0xF0 == typeCounter.rawValue, pub.dataSize == 8,
                pub.attributes.contains(.written), pub.attributes.contains(.authRead), pub.authPolicy.isEmpty
            else {
                throw VaultError(
                    reason:
                        "vault: the NV index at \(index) is not Vigil's approval counter (attributes \(pub.attributes.rawValue))"
                )
            }
            let bytes = try await tpm.nvRead(index, size: 8, authorization: .index(nil))
            guard bytes.count == 8 else { throw VaultError(reason: "vault: the approval counter read short") }
            let value = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let name: TPMName
            do { name = try pub.name() } catch { throw VaultError(reason: "vault: approval counter name: \(error)") }
            return State(epoch: value, name: Hex.encode(name.bytes))
        } catch let e as VaultError {
            throw e
        } catch let e as TPMError {
            throw VaultError(reason: "vault: reading the approval counter failed: \(e.reason)", tpm: e)
        } catch {
            throw VaultError(reason: "vault: reading the approval counter failed: \(error)")
        }
    }

    /// `vigil vault revoke-approvals`: raises the epoch by one; approvals for earlier epochs stop opening.
    public static func revoke(tpm: TPM) async throws(VaultError) -> State {
        _ = try await read(tpm: tpm)
        do { try await tpm.nvIncrement(index, authorization: .index(nil)) } catch {
            throw VaultError(reason: "vault: incrementing the approval counter failed: \(error.reason)", tpm: error)
        }
        return try await read(tpm: tpm)
    }

    /// The operand an approval for `epoch` compares against: 8 bytes, big-endian (the counter's encoding).
    public static func operand(epoch: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: epoch >> (56 - 8 * UInt64($0))) }
    }
}
