/* Generated from VERSION by scripts/version.sh (make version): do not edit. */
#ifndef RINGMPSC_VERSION_H
#define RINGMPSC_VERSION_H

#define RMPSC_VERSION_MAJOR  0
#define RMPSC_VERSION_MINOR  7
#define RMPSC_VERSION_PATCH  0
#define RMPSC_VERSION_STRING "0.7.0"

#endif /* RINGMPSC_VERSION_H */
