/* A stand-in for Windows' bcryptprimitives.dll, for the Windows test run under Wine only.
 *
 * Rust's std (1.78 and later) takes its random bytes (HashMap's seeds) from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8.0 (Debian 12's) does not have yet: without it no Rust
 * program starts under that Wine ("Library bcryptprimitives.dll ... not found"). This one
 * answers from RtlGenRandom (advapi32's SystemFunction036), which Wine has. Real Windows has
 * the real DLL and never sees this file. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
