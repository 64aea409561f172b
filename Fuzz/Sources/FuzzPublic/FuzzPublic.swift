import Attest

/// TPMT_PUBLIC / TPM2B_PUBLIC decoding, Name computation, key conversion, and EK certificates.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let pub = try? TPMTPublic(tpmPublicBytes: bytes) {
        _ = try? pub.name()
        _ = pub.marshalTPM2B()
        _ = try? pub.pemRepresentation()
        _ = try? AKPublic(pub)
    }
    _ = try? EKCertificate(bytes: bytes)
    _ = try? CACertificateFolder.parse(bytes)  // PEM bundles, and the DER SET-order repair of self-signed roots
    return 0
}
