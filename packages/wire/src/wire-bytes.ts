// The wire bytes of messages parsed as part of a larger one, for a receiver that passes them on as
// they arrived instead of encoding them again. The broker stores every task envelope of an Enqueue
// request (and of the ready tasks in ReportResults' answers) in Redis; without this it decoded each
// envelope and encoded it again, byte for byte the same.
//
// Only fields named with keepWireBytes are kept, one WeakMap entry per message, gone with it. A
// receiver that keeps a field's bytes must not change its items (the bytes would no longer match).
import { fromBinary, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The repeated message fields whose items' bytes are kept, by the message type holding them. */
const keptFields = new Map<DescMessage, DescField>();
const wireBytes = new WeakMap<object, Uint8Array>();

/** From now on, parsing `message` with parseKeepingBytes keeps the bytes of each item of its repeated message `field`. */
export function keepWireBytes(message: DescMessage, field: DescField): void {
  if (field.parent !== message || field.fieldKind !== "list" || field.listKind !== "message") {
    throw new Error(`${field.toString()} is not a repeated message field of ${message.typeName}`);
  }
  keptFields.set(message, field);
}

/** The bytes `message` was parsed from, when it is an item of a kept field; undefined otherwise. */
export function wireBytesOf(message: object): Uint8Array | undefined {
  return wireBytes.get(message);
}

/** fromBinary, keeping the items' bytes of the message type's kept field (see keepWireBytes). */
export function parseKeepingBytes<Desc extends DescMessage>(desc: Desc, bytes: Uint8Array): MessageShape<Desc> {
  const message = fromBinary(desc, bytes);
  const field = keptFields.get(desc);
  if (field) rememberItems(field, message as Record<string, unknown>, bytes);
  return message;
}

function rememberItems(field: DescField, message: Record<string, unknown>, bytes: Uint8Array): void {
  const items = message[field.localName] as object[];
  if (items.length === 0) return;
  const slices: Uint8Array[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === field.number && wireType === WireType.LengthDelimited) slices.push(reader.bytes());
    else reader.skip(wireType, no);
  }
  // Items the parse merged or split differently (never from a conforming sender) are encoded again.
  if (slices.length !== items.length) return;
  for (let i = 0; i < items.length; i++) wireBytes.set(items[i]!, slices[i]!);
}
