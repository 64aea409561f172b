#!/usr/bin/env bash
# Shows that the tests guarding each verifier refusal can fail: in a scratch git worktree of HEAD (the working
# tree is never touched), each check is disabled in turn by one edit, the tests that guard it are run, and the
# run must FAIL. Prints one line per mutation; exits 1 if any mutation survives (its tests still pass).
#   scripts/check-refusals-can-fail.sh [NAME...]      (default: every mutation below)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_require_swift
scratch=$(mktemp -d /tmp/vigil-mutations.XXXXXX)
git worktree add --detach -q "$scratch/tree" HEAD
trap 'git worktree remove --force "$scratch/tree"; rm -rf "$scratch"' EXIT
build="$scratch/build"
export TSS2_LOG=all+none

# name ~ files (comma-separated) ~ text to find (literal, first occurrence in each file) ~ replacement ~ test filter
mutations=(
  'ak-attributes~Sources/Attest/Verify/AKPublic.swift~guard missing.isEmpty else~guard true else~ForgeryTests/aKeyWithoutTPMAttributesIsRefusedAsAnAK'
  'signature-scheme~Sources/Attest/Verify/QuoteVerifier.swift~try ak.checkScheme(of: sig)~_ = sig~ForgeryTests/anAKWhoseSchemeIsNotTheSignaturesIsRefused'
  'qualified-signer~Sources/Attest/Verify/QuoteVerifier.swift~if constantTimeEquals(expected.bytes, qn.bytes) { return h }~_ = expected~ForgeryTests/theQuotesQualifiedSignerNamesTheAK'
  'empty-nonce~Sources/Attest/Verify/EvidenceVerifier.swift,Sources/Attest/Verify/QuoteVerifier.swift~guard !nonce.isEmpty else~guard true else~ForgeryTests/theNonceIsNeverTakenFromTheBundle'
  'required-selection~Sources/Attest/Verify/EvidenceVerifier.swift~guard missing.isEmpty else~guard true else~ForgeryTests/aQuoteThatLeavesOutARequiredPCRIsRefused'
  'ak-binding~Sources/Attest/Verify/EvidenceVerifier.swift~guard let name = ak.name, name == akBinding.akName else~guard true else~ForgeryTests/anAKOtherThanTheBoundOneIsRefused'
  'anchors-from-bundle~Sources/Attest/Identity/EKCertificateVerifier.swift~roots = anchors.roots~roots = anchors.roots + untrustedIntermediates.filter { $0.subject == $0.issuer }~ForgeryTests/aSelfMadeCAInTheBundleIsNeverAnAnchor'
  'data-binding~Sources/Attest/EventLog/EventDataBinding.swift~if !matches { return .unbound(bank: bank) }~_ = matches~ForgeryTests/editedSecureBootDataIsNotBelieved'
  'retyped-app~Sources/Attest/BootFacts/BootFacts.swift~if pcr == 4, !(isBound && (e.type == .separator || e.type == .efiAction)) {~if pcr == 4, e.type == .efiBootServicesApplication {~ForgeryTests/aRetypedBootApplicationIsStillJudged'
  'hidden-pcr~Sources/Attest/Verify/VerifiedEventLog.swift~} else if !extended.contains(pcr) && pcr >= 8 {~} else if !extended.contains(pcr) {~ForgeryTests/aPCRWhoseEventsWereAllRemovedIsAMismatch'
  'retyped-separator~Sources/Attest/BootFacts/BootFacts.swift~if pcr < 8, errorSeparatorDigests~if false, errorSeparatorDigests~ForgeryTests/aRetypedErrorSeparatorIsStillAnErrorSeparator'
  'bank-agreement~Sources/Policy/Engine/PolicyEngine.swift~for other in quotedTrusted where other != bank {~for other in quotedTrusted where other != bank \&\& false {~BankAgreementTests'
  'identity-unbound~Sources/Policy/Engine/EvaluationInput.swift~case .notBound(let reason)?: "AK not bound to the EK (\(reason))"~case .notBound?: nil~RuleTests/ekCertificate'
  'ear-instance-identity~Sources/Policy/Engine/Verdict.swift~verdict.akBoundToEK ? identity : (identity == 96 ? 96 : 0)~identity~ForgeryTests/earInstanceIdentityIsAffirmingOnlyWithABinding'
  'nonce-age-fail-open~Sources/Policy/Rules/NonceAgeRule.swift~id, .failed, "≤ \(maxSeconds) s",~id, .notApplicable, "≤ \(maxSeconds) s",~RuleTests/nonceAge'
  'reboot-fail-open~Sources/Policy/Rules/RebootRule.swift~id, allow ? .notApplicable : .failed, expected,~id, .passed, expected,~RuleTests/reboot'
  'controller-nonce-single-use~Sources/Controller/Service/Controller+Attestation.swift~AND device_id = ? AND used_at IS NULL AND expires_at > ? RETURNING~AND device_id = ? AND expires_at > ? RETURNING~ControllerForgeryTests'
  'controller-nonce-device-bound~Sources/Controller/Service/Controller+Attestation.swift~WHERE nonce = ? AND device_id = ? AND used_at IS NULL~WHERE nonce = ? AND (device_id = ? OR 1 = 1) AND used_at IS NULL~ControllerForgeryTests'
  'controller-bound-ak~Sources/Controller/Service/Controller+Attestation.swift~akBinding: device.binding,~akBinding: nil,~ControllerForgeryTests'
  'controller-release-needs-pass~Sources/Controller/Service/Controller+Secrets.swift~guard try row.requiredInteger("pass") == 1 else {~guard true else {~ControllerEndToEndTests'
  'controller-request-replay~Sources/Controller/Service/Controller.swift~guard !fresh.isEmpty else {~guard true else {~ControllerForgeryTests'
  'controller-audit-digest~Sources/Controller/Audit/AuditLog.swift~} else if entry.digest != stored {~} else if false {~ControllerEndToEndTests'
  'vault-escrow-needs-pass~Sources/Controller/Service/Controller+Secrets.swift~try await requireFreshPass(tx, device, now: now)  // a failing device~_ = (tx, device, now)  // a failing device~VaultRecoveryTests/createLockUnlockChange'
  'vault-approval-expiry~Sources/Vault/Sealing/PCRApproval.swift~guard expiresAt > now else {~guard true else {~VaultApprovalTests'
  'vault-approval-counter~Sources/Vault/Sealing/PCRSealedKey.swift~operation: .unsignedLessOrEqual)~operation: .unsignedGreaterOrEqual)~VaultApprovalTests'
  'controller-token-needs-ek-chain~Sources/Controller/Service/Controller+Onboarding.swift~if tokenHash != nil, !chainVerified {~if false, !chainVerified {~ControllerEndToEndTests'
  'kernel-tokenizer~Sources/Attest/BootFacts/KernelCommandLine.swift~} else if !inQuotes, byte == 0x20 || (0x09...0x0D).contains(byte) || byte == 0 {~} else if byte == 0x20 {~ForgeryTests/kernelCommandLinesAreReadAsTheKernelReadsThem'
)

wanted=("$@")
survivors=0
first=1
for m in "${mutations[@]}"; do
  IFS='~' read -r name files pattern replacement filter <<< "$m"
  if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  IFS=',' read -r -a targets <<< "$files"
  applied=1
  for file in "${targets[@]}"; do
    cp "$scratch/tree/$file" "$scratch/original.$(basename "$file")"
    if ! python3 - "$scratch/tree/$file" "$pattern" "$replacement" <<'PY'
import sys
path, pattern, replacement = sys.argv[1:4]
text = open(path).read()
if pattern not in text:
    sys.exit(f"not found in {path}: {pattern}")
open(path, "w").write(text.replace(pattern, replacement.replace("\\&", "&"), 1))
PY
    then applied=0; fi
  done
  restore() { for file in "${targets[@]}"; do cp "$scratch/original.$(basename "$file")" "$scratch/tree/$file"; done; }
  if ((!applied)); then
    echo "ERROR  $name: the mutation no longer applies (update this script)"; survivors=$((survivors + 1)); restore; continue
  fi
  if ((first)); then echo "== first build of the scratch tree (a few minutes)"; first=0; fi
  if ! (cd "$scratch/tree" && swift build --build-tests --scratch-path "$build" > "$scratch/build.log" 2>&1); then
    echo "ERROR  $name: the mutated code does not compile (a mutation must build; see $scratch/build.log)"
    survivors=$((survivors + 1)); restore; continue
  fi
  if (cd "$scratch/tree" && swift test --skip-build --scratch-path "$build" --filter "$filter" > "$scratch/test.log" 2>&1); then
    echo "SURVIVED $name: $filter still passes with the check disabled"; survivors=$((survivors + 1))
  else
    echo "KILLED $name: $filter fails ($(grep -cE 'recorded an issue' "$scratch/test.log") issue(s))"
  fi
  restore
done
exit $((survivors > 0))
