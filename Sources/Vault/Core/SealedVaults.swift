import Foundation

/// Opening a vault by its path, and locking any vault: what the CLI and the node agent share.
public enum SealedVaults {
    /// The vault at `path`: a LUKS2 volume when it has a LUKS2 header, else an fscrypt directory.
    public static func open(_ path: String) -> any SealedVault {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return FSCryptVault(path: path)  // without loading libcryptsetup (and libdevmapper) at all
        }
        return LUKS2Vault.isLUKS2(path) ? LUKS2Vault(path: path) : FSCryptVault(path: path)
    }

    /// Locks `vault`; false when files inside an fscrypt directory are still open (its key is then removed for
    /// new opens, and the files close it out).
    public static func lock(_ vault: any SealedVault) throws(VaultError) -> Bool {
        switch vault {
        case let v as FSCryptVault: return try v.lock()
        case let v as LUKS2Vault:
            try v.lock()
            return true
        default: throw VaultError(reason: "vault: \(vault.location) is of an unknown kind")
        }
    }

    /// Whether `vault` is unlocked now.
    public static func isUnlocked(_ vault: any SealedVault) throws(VaultError) -> Bool {
        try vault.state(try vault.read()).hasPrefix("unlocked")
    }
}
