import Attest

/// TPMT_SIGNATURE decoding and signature checking with a fixed P-256 key.
let key = try? TPMTPublic(
    signingKeyPEM: """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBRmB+WDDH6WJbW6YCNjSWzcVhaCX
        kZbu03msRgj0ZrCIf3JlUg/nVAkTLJ+26oCl+qkyZHHh6mkutewK3xl1Hw==
        -----END PUBLIC KEY-----
        """)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let sig = try? TPMTSignature(bytes: bytes) {
        _ = sig.marshal()
        _ = key?.isValidSignature(sig, for: bytes)
    }
    return 0
}
