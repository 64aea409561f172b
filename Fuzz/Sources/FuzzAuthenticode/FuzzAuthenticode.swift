import Attest

/// PE/COFF images for the Authenticode digest (`vigil vault predict` reads the new images a team supplies).
/// Seeds: Debian's EFI binaries (shim, systemd-boot), copied by Fuzz/run.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? AuthenticodeDigest(image: bytes)
    _ = try? AuthenticodeDigest(image: bytes, hashAlg: .sha1)
    return 0
}
