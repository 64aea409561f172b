public import Crypto
public import Foundation

/// A secret released to one device, so that only its TPM can open it (`vigil device fetch-secret`).
///
/// The controller draws a fresh 32-byte secret, delivers it with TPM2_MakeCredential to the device's EK for its
/// AK's Name (``credential``: only the TPM holding both recovers it, with TPM2_ActivateCredential), and seals the
/// secret with AES-256-GCM under a key derived from it (``key(activated:releaseNonce:)``). The additional data binds the format version, the
/// device, the secret's name and version, and the release nonce, so an envelope cannot be passed off as
/// another device's, another secret or another release.
public struct SecretEnvelope: Codable, Sendable, Hashable {
    /// The envelope format.
    public static let currentFormat = 1
    /// The largest secret the controller stores and releases.
    public static let maximumSecretSize = 64 * 1024

    /// ``currentFormat``.
    public var format: Int
    /// The device it was released to.
    public var deviceID: DeviceID
    /// The secret's name.
    public var name: String
    /// The secret's version (each `secret put` makes a new one).
    public var version: Int
    /// 16 random bytes, hex: this release.
    public var releaseNonce: String
    /// The credential challenge carrying the AES key (`CredentialChallenge.json()`), base64.
    public var credential: String
    /// AES-256-GCM nonce ‖ ciphertext ‖ tag, base64.
    public var sealed: String

    /// An envelope.
    public init(
        deviceID: DeviceID, name: String, version: Int, releaseNonce: String, credential: String, sealed: String
    ) {
        self.format = Self.currentFormat
        self.deviceID = deviceID
        self.name = name
        self.version = version
        self.releaseNonce = releaseNonce
        self.credential = credential
        self.sealed = sealed
    }

    enum CodingKeys: String, CodingKey {
        case format, deviceID = "deviceId", name, version, releaseNonce, credential, sealed
    }

    /// The AES-256-GCM key of an envelope: HKDF-SHA256 of the secret TPM2_ActivateCredential recovers, with a
    /// context and the release nonce as info (the activated secret is never used as a key directly; see
    /// ``OnboardingProof``).
    public static func key(activated: some ContiguousBytes, releaseNonce: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: activated),
            info: Array(("vigil-secret-envelope-key-v1\u{0}" + releaseNonce).utf8), outputByteCount: 32)
    }

    /// The AEAD additional data: a context string and each bound field, NUL-separated (none can contain NUL:
    /// device ids, secret names and hex nonces are validated forms).
    public static func additionalData(deviceID: DeviceID, name: SecretName, version: Int, releaseNonce: String)
        -> [UInt8]
    {
        Array(
            [
                "vigil-secret-envelope", String(currentFormat), deviceID.rawValue, name.rawValue, String(version),
                releaseNonce,
            ]
            .joined(separator: "\u{0}").utf8)
    }

    /// Seals `plaintext` under `key` for the fields given.
    public static func seal(
        _ plaintext: some DataProtocol, key: SymmetricKey, deviceID: DeviceID, name: SecretName, version: Int,
        releaseNonce: String
    ) throws(ControllerProtocolError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(
                plaintext, using: key,
                authenticating: additionalData(
                    deviceID: deviceID, name: name, version: version, releaseNonce: releaseNonce))
            guard let combined = box.combined else {
                throw ControllerProtocolError(.invalid, "AES-GCM produced no combined output")
            }
            return Array(combined)
        } catch let e as ControllerProtocolError {
            throw e
        } catch {
            throw ControllerProtocolError(.invalid, "AES-GCM seal: \(error)")
        }
    }

    /// Opens ``sealed`` with the key TPM2_ActivateCredential recovered, checking it was released to
    /// `expectedDevice` for `expectedName` (what the device asked for, not what the envelope says).
    public func open(key: SymmetricKey, expectedDevice: DeviceID, expectedName: SecretName)
        throws(ControllerProtocolError) -> [UInt8]
    {
        guard format == Self.currentFormat else {
            throw ControllerProtocolError(.sealedDataRejected, "secret envelope: format \(format) is not supported")
        }
        guard deviceID == expectedDevice, name == expectedName.rawValue else {
            throw ControllerProtocolError(
                .sealedDataRejected,
                "secret envelope: released to \(deviceID) for \(name.debugDescription.prefix(80)), not \(expectedDevice) for \(expectedName)"
            )
        }
        let bytes = try APIJSON.base64(sealed, field: "sealed", limit: Self.maximumSecretSize + 64)
        do {
            let box = try AES.GCM.SealedBox(combined: bytes)
            return Array(
                try AES.GCM.open(
                    box, using: key,
                    authenticating: Self.additionalData(
                        deviceID: expectedDevice, name: expectedName, version: version, releaseNonce: releaseNonce)))
        } catch {
            throw ControllerProtocolError(
                .sealedDataRejected,
                "secret envelope: the AES-GCM tag does not verify (wrong TPM, or the envelope or its fields were altered)"
            )
        }
    }
}
