import Attest

/// TPMS_ATTEST and TPM2B_ATTEST decoding, and the quote verifier's decode path.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? TPMSAttest(bytes: bytes)
    _ = try? TPMSAttest(tpm2bBytes: bytes)
    _ = try? TPM2ToolsPCRFile.parse(bytes)
    _ = try? TPMSCapabilityData(bytes: bytes)
    _ = try? TPMSNVPublic(tpm2bBytes: bytes)
    return 0
}
