// CTSS2: libtss2 (ESAPI, TCTI loader, marshalling, return-code decoding). Includes only.
#ifndef VIGIL_CTSS2_SHIM_H
#define VIGIL_CTSS2_SHIM_H
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

/* The context of Vigil's deadline TCTI (Sources/AttestTPM/Core/TCTIDeadline.swift): a TCTI common header
 * whose functions forward to `inner`, replacing ESAPI's "block for ever" receive with a bounded one. */
typedef struct {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    TSS2_TCTI_CONTEXT *inner;
    int32_t blockingTimeoutMilliseconds;
    int32_t expired;
    int32_t socketPort;
    int32_t lastSocket;
    int32_t awaitingFirstByte;
} VIGIL_TCTI_DEADLINE;
#endif
