// CTSS2: libtss2 (ESAPI, TCTI loader, marshalling, return-code decoding). Includes only.
#ifndef VIGIL_CTSS2_SHIM_H
#define VIGIL_CTSS2_SHIM_H
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

/* The context of Vigil's deadline TCTI (Sources/AttestTPM/Core/TCTIDeadline.swift): a TCTI common header whose
 * functions either forward to `inner` with a bounded receive, or (for swtpm, `inner` NULL) speak swtpm's TCP
 * protocol over Vigil's own socket: one connection per command, every wait bounded by poll(2). */
typedef struct {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    TSS2_TCTI_CONTEXT *inner;
    int32_t blockingTimeoutMilliseconds;
    int32_t expired;
    /* TPM commands transmitted on this context (for measurements: vigil vault unlock --measure). */
    uint32_t commandsSent;
    /* swtpm mode: the TPM and control endpoints, resolved once. */
    /* struct sockaddr_storage bytes (128) and lengths; kept as bytes so this header needs no socket headers. */
    uint8_t tpmAddress[128];
    uint32_t tpmAddressLength;
    uint8_t controlAddress[128];
    uint32_t controlAddressLength;
    /* The connection of the command in flight (-1: none), and how much of its response was read. */
    int32_t socket;
    int32_t headerRead;
    uint32_t responseSize;
    uint8_t header[10];
    uint8_t locality;
} VIGIL_TCTI_DEADLINE;
#endif
