/**
 * libpcap classic capture format (https://www.tcpdump.org/manpages/pcap-savefile.5.html),
 * little-endian, microsecond timestamps. Pure byte builders: the caller does the file I/O.
 */

export const LINKTYPE_ETHERNET = 1;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
const DEFAULT_SNAPLEN = 65535;

export function pcapGlobalHeader(snaplen = DEFAULT_SNAPLEN, linktype = LINKTYPE_ETHERNET): Uint8Array {
  const out = new Uint8Array(PCAP_GLOBAL_HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint32(0, PCAP_MAGIC_MICROS, true);
  v.setUint16(4, 2, true); // version_major
  v.setUint16(6, 4, true); // version_minor
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return out;
}

/** One record: header (ts_sec, ts_usec, incl_len, orig_len) + the frame cut to `snaplen`. */
export function pcapRecord(timestampMicros: number, frame: Uint8Array, snaplen = DEFAULT_SNAPLEN): Uint8Array {
  const inclLen = Math.min(frame.length, snaplen);
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + inclLen);
  const v = new DataView(out.buffer);
  const us = Math.floor(timestampMicros);
  const sec = Math.floor(us / 1_000_000);
  v.setUint32(0, sec >>> 0, true);
  v.setUint32(4, us - sec * 1_000_000, true);
  v.setUint32(8, inclLen, true);
  v.setUint32(12, frame.length, true);
  out.set(frame.subarray(0, inclLen), PCAP_RECORD_HEADER_LEN);
  return out;
}
