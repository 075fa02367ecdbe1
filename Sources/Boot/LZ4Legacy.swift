/// A decoder for the LZ4 "legacy frame" format, the one `lz4 -l` writes and the kernel build uses for
/// CONFIG_KERNEL_LZ4 (Debian's cloud kernel).
///
/// Frame (lz4 doc/lz4_Frame_format.md, "Legacy frame"):
///
///     magic 02 21 4C 18 (0x184C2102 LE)
///     block*: [u32 LE compressed size][LZ4 block]   each block decodes to at most 8 MiB, independently
///
/// A size field equal to the magic starts a new frame (concatenated `lz4 -l` outputs); the kernel's
/// lib/decompress_unlz4.c skips it the same way. Blocks are independent: a match may only reach back into
/// the output of its own block.
///
/// Block (lz4 doc/lz4_Block_format.md), a run of sequences:
///
///     token: high nibble = literal length, low nibble = match length - 4 (15 means "more bytes follow")
///     [extra literal-length bytes: add each; a byte < 255 ends the run]
///     literals
///     offset: u16 LE, 1 ... 65535 back from the current output position      (absent in the last sequence)
///     [extra match-length bytes]
///
/// The input is untrusted: every length is checked against what is left of the input, every offset
/// against the output of the block, and the output against the caller's bound, before any byte moves.
public enum LZ4Legacy {
    public static let magic: UInt32 = 0x184C_2102
    /// The largest block the legacy format allows (lz4's LEGACY_BLOCKSIZE).
    public static let maxBlockSize = 8 << 20
    /// LZ4_compressBound(8 MiB): a block of compressed data can never be larger than this.
    public static let maxCompressedBlockSize = maxBlockSize + maxBlockSize / 255 + 16
    /// The most output one byte of an LZ4 block can produce: an extended length byte of 255 (a sequence's token,
    /// offset and literals yield less per byte). So a small block needs no 8 MiB tail zeroed for its output.
    static let maximumExpansion = 255

    /// Decodes a whole legacy-frame stream.
    ///
    /// - Parameter maxOutputSize: the decoder throws instead of producing more than this.
    /// - Parameter expectedSize: when known (the kernel appends it), the output buffer is sized once.
    public static func decompress(_ input: ArraySlice<UInt8>, maxOutputSize: Int, expectedSize: Int? = nil) throws(BootError) -> [UInt8] {
        let base = input.startIndex
        var position = base
        func fail(_ reason: String, at index: Int) -> BootError {
            .corruptPayload(format: .lz4, offset: index - base, reason: reason)
        }
        func readLE32(at index: Int) -> UInt32 {
            UInt32(input[index]) | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2]) << 16 | UInt32(input[index + 3]) << 24
        }

        guard input.count >= 4, readLE32(at: position) == magic else {
            throw fail("no LZ4 legacy frame magic (02 21 4c 18)", at: position)
        }
        position += 4

        var output: [UInt8] = []
        output.reserveCapacity(min(expectedSize ?? maxBlockSize, maxOutputSize))

        while position < input.endIndex {
            guard input.endIndex - position >= 4 else {
                throw fail("\(input.endIndex - position) stray bytes where a block size belongs", at: position)
            }
            let blockSize = readLE32(at: position)
            if blockSize == magic {          // another frame follows
                position += 4
                continue
            }
            guard blockSize > 0, blockSize <= maxCompressedBlockSize else {
                throw fail("block size \(blockSize) is outside 1 ... \(maxCompressedBlockSize)", at: position)
            }
            position += 4
            guard input.endIndex - position >= Int(blockSize) else {
                throw fail("block of \(blockSize) bytes but only \(input.endIndex - position) left", at: position)
            }
            let blockEnd = position + Int(blockSize)
            let limit = min(maxOutputSize - output.count, maxBlockSize, Int(blockSize) * maximumExpansion)
            try decodeBlock(input, from: position, to: blockEnd, appendingTo: &output, limit: limit, base: base)
            position = blockEnd
        }
        return output
    }

    /// Decodes one independent LZ4 block `input[start..<end]`, appending at most `limit` bytes to `output`.
    ///
    /// The output grows by `limit` once and the block is decoded into that tail through spans (bounds-checked,
    /// but with no per-byte capacity, uniqueness or reference-count work, which made byte-by-byte appends the
    /// largest cost of starting a Linux guest), then the unused rest is cut off.
    static func decodeBlock(_ input: ArraySlice<UInt8>, from start: Int, to end: Int,
                            appendingTo output: inout [UInt8], limit: Int, base: Int) throws(BootError) {
        let blockStart = output.count       // matches may not reach before this: blocks are independent
        let outputLimit = blockStart + limit
        output.append(contentsOf: repeatElement(0, count: limit))
        var written = blockStart
        defer { output.removeLast(outputLimit - written) }

        let source = input.span             // indexed from 0 at input.startIndex
        var target = output.mutableSpan
        let origin = input.startIndex
        var position = start
        func fail(_ reason: String) -> BootError {
            .corruptPayload(format: .lz4, offset: position - base, reason: reason)
        }
        // 15 in a nibble means the length continues in the following bytes, each added until one < 255.
        func extendedLength(_ initial: Int) throws(BootError) -> Int {
            var length = initial
            guard initial == 15 else { return length }
            while true {
                guard position < end else { throw fail("block ends inside a length") }
                let byte = source[position - origin]
                position += 1
                length += Int(byte)
                // A length beyond the block bound is already an error; checking here also rules out overflow.
                guard length <= maxBlockSize else { throw fail("length \(length) exceeds the 8 MiB block") }
                if byte != 255 { return length }
            }
        }

        while true {
            guard position < end else { throw fail("block ends where a sequence token belongs") }
            let token = source[position - origin]
            position += 1

            let literalLength = try extendedLength(Int(token >> 4))
            guard end - position >= literalLength else {
                throw fail("\(literalLength) literals but only \(end - position) bytes left in the block")
            }
            guard outputLimit - written >= literalLength else {
                throw fail("output would exceed its bound of \(limit) bytes for this block")
            }
            let literals = position - origin
            for index in 0..<literalLength { target[written + index] = source[literals + index] }
            written += literalLength
            position += literalLength

            // The last sequence of a block has literals only.
            if position == end { return }

            guard end - position >= 2 else { throw fail("block ends inside a match offset") }
            let offset = Int(source[position - origin]) | Int(source[position + 1 - origin]) << 8
            position += 2
            let matchLength = try extendedLength(Int(token & 0x0f)) + 4
            guard offset > 0, offset <= written - blockStart else {
                throw fail("match offset \(offset) reaches before the start of the block's output "
                    + "(\(written - blockStart) bytes so far)")
            }
            guard outputLimit - written >= matchLength else {
                throw fail("output would exceed its bound of \(limit) bytes for this block")
            }
            // Forwards, byte by byte: the source may overlap what is being written (offset < length repeats a
            // pattern), and each byte must see the ones just written.
            for index in written..<(written + matchLength) { target[index] = target[index - offset] }
            written += matchLength
        }
    }
}
