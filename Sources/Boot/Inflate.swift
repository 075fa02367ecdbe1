/// A DEFLATE decoder (RFC 1951), for gzip-compressed kernels (CONFIG_KERNEL_GZIP, the kernel's default).
///
/// The input is untrusted. Every code table is validated when built (an over-subscribed set of code
/// lengths is rejected), every back-reference is checked against the output produced so far, every read
/// past the end of the input throws, and the output never grows beyond the caller's bound.
public enum Inflate {
    /// Decodes one raw DEFLATE stream starting at `input.startIndex`.
    ///
    /// - Returns: the output, and the index just past the stream's last byte (the final block ends on a
    ///   bit boundary; the rest of that byte is padding).
    public static func decompress(_ input: ArraySlice<UInt8>, maxOutputSize: Int, expectedSize: Int? = nil,
                                  format: PayloadFormat = .gzip) throws(BootError) -> (output: [UInt8], end: Int) {
        var state = InflateState(input: input, maxOutputSize: maxOutputSize, format: format)
        state.output.reserveCapacity(min(expectedSize ?? (1 << 20), maxOutputSize))
        try state.run()
        return (state.output, state.bits.byteAlignedPosition)
    }
}

/// Reads bits least-significant first, as DEFLATE packs them (RFC 1951, 3.1.1).
struct BitReader {
    let input: ArraySlice<UInt8>
    let format: PayloadFormat
    private(set) var position: Int
    private var buffer: UInt64 = 0
    private var count = 0

    init(_ input: ArraySlice<UInt8>, format: PayloadFormat) {
        self.input = input
        self.format = format
        self.position = input.startIndex
    }

    func failure(_ reason: String) -> BootError {
        .corruptPayload(format: format, offset: position - input.startIndex, reason: reason)
    }

    /// Tops the buffer up to at least 57 bits, or to whatever the input has left.
    @inline(__always)
    private mutating func refill() {
        while count <= 56, position < input.endIndex {
            buffer |= UInt64(input[position]) << UInt64(count)
            position += 1
            count += 8
        }
    }

    /// The next `n` bits (n <= 32) without consuming them; missing bits past the end of input read as 0.
    @inline(__always)
    mutating func peek(_ n: Int) -> UInt32 {
        if count < n { refill() }
        return UInt32(truncatingIfNeeded: buffer & ((1 << UInt64(n)) - 1))
    }

    /// Consumes `n` bits that were peeked; throws if the input ended before them.
    @inline(__always)
    mutating func consume(_ n: Int) throws(BootError) {
        guard count >= n else { throw failure("input ends in the middle of the stream") }
        buffer >>= UInt64(n)
        count -= n
    }

    @inline(__always)
    mutating func bits(_ n: Int) throws(BootError) -> UInt32 {
        let value = peek(n)
        try consume(n)
        return value
    }

    /// Drops the bits up to the next byte boundary (before a stored block).
    mutating func alignToByte() {
        let drop = count % 8
        buffer >>= UInt64(drop)
        count -= drop
    }

    /// Index of the first input byte not (even partly) consumed, once aligned to a byte.
    var byteAlignedPosition: Int { position - count / 8 }

    /// Takes `length` whole bytes (the reader must be byte-aligned), for stored blocks.
    mutating func bytes(_ length: Int) throws(BootError) -> ArraySlice<UInt8> {
        // Give back the whole bytes still sitting in the bit buffer, then slice the input directly.
        position -= count / 8
        buffer = 0
        count = 0
        guard input.endIndex - position >= length else {
            throw failure("stored block of \(length) bytes but only \(input.endIndex - position) left")
        }
        defer { position += length }
        return input[position..<(position + length)]
    }
}

/// A canonical Huffman code (RFC 1951, 3.2.2) with a lookup table for codes of up to `fastBits` bits and
/// a bit-by-bit walk for the longer ones.
struct HuffmanCode {
    static let maxBits = 15
    static let fastBits = 9

    /// count[len]: how many symbols have a code of `len` bits.
    private var count = [Int](repeating: 0, count: maxBits + 1)
    /// Symbols in canonical order (by code length, then by symbol value).
    private var symbols: [UInt16]
    /// Indexed by the next `fastBits` input bits: (symbol << 4) | length, or 0 for "longer code".
    private var fast = [UInt16](repeating: 0, count: 1 << fastBits)

    /// Builds the code from per-symbol lengths (0 = symbol unused). Throws when the lengths describe more
    /// codes than fit ("over-subscribed"); an incomplete code is allowed (RFC 1951 permits a single
    /// distance code), and an input that uses an unassigned code fails in `decode`.
    init(lengths: ArraySlice<UInt8>, what: String, reader: BitReader) throws(BootError) {
        symbols = [UInt16](repeating: 0, count: lengths.count)
        for length in lengths { count[Int(length)] += 1 }
        count[0] = 0
        var left = 1
        for length in 1...Self.maxBits {
            left = left * 2 - count[length]
            guard left >= 0 else { throw reader.failure("over-subscribed \(what) code lengths") }
        }
        // Offsets of each length's first symbol in `symbols`, then place symbols in canonical order.
        var offsets = [Int](repeating: 0, count: Self.maxBits + 2)
        for length in 1...Self.maxBits { offsets[length + 1] = offsets[length] + count[length] }
        for (symbol, length) in lengths.enumerated() where length != 0 {
            symbols[offsets[Int(length)]] = UInt16(symbol)
            offsets[Int(length)] += 1
        }
        // Fill the fast table: the canonical code of each short symbol, bit-reversed because DEFLATE sends
        // Huffman codes most-significant bit first into an LSB-first stream.
        var code = 0
        var index = 0
        for length in 1...Self.maxBits {
            for _ in 0..<count[length] {
                if length <= Self.fastBits {
                    let reversed = Self.reverse(code, bits: length)
                    let entry = UInt16(symbols[index]) << 4 | UInt16(length)
                    for slot in stride(from: reversed, to: 1 << Self.fastBits, by: 1 << length) { fast[slot] = entry }
                }
                code += 1
                index += 1
            }
            code <<= 1
        }
    }

    private static func reverse(_ value: Int, bits: Int) -> Int {
        var result = 0
        var value = value
        for _ in 0..<bits {
            result = result << 1 | value & 1
            value >>= 1
        }
        return result
    }

    /// Reads one symbol.
    @inline(__always)
    func decode(_ reader: inout BitReader) throws(BootError) -> Int {
        let entry = fast[Int(reader.peek(Self.fastBits))]
        if entry != 0 {
            try reader.consume(Int(entry & 0x0f))
            return Int(entry >> 4)
        }
        return try decodeSlowly(&reader)
    }

    /// The canonical walk: after each bit, codes of this length are first ... first + count - 1.
    private func decodeSlowly(_ reader: inout BitReader) throws(BootError) -> Int {
        var code = 0, first = 0, index = 0
        for length in 1...Self.maxBits {
            code |= Int(try reader.bits(1))
            let lengthCount = count[length]
            if code - lengthCount < first { return Int(symbols[index + (code - first)]) }
            index += lengthCount
            first = (first + lengthCount) << 1
            code <<= 1
        }
        throw reader.failure("bit pattern matches no Huffman code")
    }
}

struct InflateState {
    var bits: BitReader
    var output: [UInt8] = []
    let maxOutputSize: Int

    init(input: ArraySlice<UInt8>, maxOutputSize: Int, format: PayloadFormat) {
        self.bits = BitReader(input, format: format)
        self.maxOutputSize = maxOutputSize
    }

    // RFC 1951, 3.2.5: base lengths and extra bits of length symbols 257 ... 285, and of distance codes.
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                     3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                      257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                      8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                       7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// The order in which code-length code lengths are sent (RFC 1951, 3.2.7).
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    mutating func run() throws(BootError) {
        var final = false
        while !final {
            final = try bits.bits(1) == 1
            switch try bits.bits(2) {
            case 0: try storedBlock()
            case 1: try fixedBlock()
            case 2: try dynamicBlock()
            default: throw bits.failure("reserved block type 3")
            }
        }
    }

    private mutating func ensureRoom(_ length: Int) throws(BootError) {
        guard maxOutputSize - output.count >= length else {
            throw bits.failure("output would exceed its bound of \(maxOutputSize) bytes")
        }
    }

    /// BTYPE 00: LEN, NLEN (its one's complement), then LEN raw bytes.
    private mutating func storedBlock() throws(BootError) {
        bits.alignToByte()
        let length = Int(try bits.bits(16))
        let complement = Int(try bits.bits(16))
        guard length == ~complement & 0xffff else { throw bits.failure("stored block length \(length) and its complement disagree") }
        try ensureRoom(length)
        output.append(contentsOf: try bits.bytes(length))
    }

    /// BTYPE 01: the fixed codes of RFC 1951, 3.2.6.
    private mutating func fixedBlock() throws(BootError) {
        var lengths = [UInt8](repeating: 8, count: 288)
        for symbol in 144..<256 { lengths[symbol] = 9 }
        for symbol in 256..<280 { lengths[symbol] = 7 }
        let literals = try HuffmanCode(lengths: lengths[...], what: "fixed literal/length", reader: bits)
        let distances = try HuffmanCode(lengths: [UInt8](repeating: 5, count: 30)[...], what: "fixed distance", reader: bits)
        try decodeSymbols(literals, distances)
    }

    /// BTYPE 10: the block first sends its own codes, themselves Huffman-coded (RFC 1951, 3.2.7).
    private mutating func dynamicBlock() throws(BootError) {
        let literalCount = Int(try bits.bits(5)) + 257
        let distanceCount = Int(try bits.bits(5)) + 1
        let codeLengthCount = Int(try bits.bits(4)) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw bits.failure("\(literalCount) literal/length and \(distanceCount) distance codes (at most 286 and 30)")
        }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for index in 0..<codeLengthCount {
            codeLengthLengths[Self.codeLengthOrder[index]] = UInt8(try bits.bits(3))
        }
        let codeLengthCode = try HuffmanCode(lengths: codeLengthLengths[...], what: "code length", reader: bits)

        // Literal/length and distance code lengths form one sequence, run-length coded with 16, 17, 18.
        var lengths = [UInt8](repeating: 0, count: literalCount + distanceCount)
        var index = 0
        while index < lengths.count {
            let symbol = try codeLengthCode.decode(&bits)
            var value: UInt8 = 0
            var repeatCount: Int
            switch symbol {
            case 0...15:
                lengths[index] = UInt8(symbol)
                index += 1
                continue
            case 16:
                guard index > 0 else { throw bits.failure("code length repeat with no previous length") }
                value = lengths[index - 1]
                repeatCount = 3 + Int(try bits.bits(2))
            case 17:
                repeatCount = 3 + Int(try bits.bits(3))
            case 18:
                repeatCount = 11 + Int(try bits.bits(7))
            default:
                throw bits.failure("code length symbol \(symbol)")
            }
            guard lengths.count - index >= repeatCount else { throw bits.failure("code length repeat runs past the code table") }
            for _ in 0..<repeatCount {
                lengths[index] = value
                index += 1
            }
        }
        guard lengths[256] != 0 else { throw bits.failure("dynamic block without an end-of-block code") }
        let literals = try HuffmanCode(lengths: lengths[0..<literalCount], what: "literal/length", reader: bits)
        let distances = try HuffmanCode(lengths: lengths[literalCount...], what: "distance", reader: bits)
        try decodeSymbols(literals, distances)
    }

    /// Literals, end-of-block, and <length, distance> back-references (RFC 1951, 3.2.5).
    private mutating func decodeSymbols(_ literals: HuffmanCode, _ distances: HuffmanCode) throws(BootError) {
        while true {
            let symbol = try literals.decode(&bits)
            if symbol < 256 {
                try ensureRoom(1)
                output.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let lengthIndex = symbol - 257
            guard lengthIndex < Self.lengthBase.count else { throw bits.failure("length symbol \(symbol)") }
            let length = Self.lengthBase[lengthIndex] + Int(try bits.bits(Self.lengthExtra[lengthIndex]))
            let distanceSymbol = try distances.decode(&bits)
            guard distanceSymbol < Self.distanceBase.count else { throw bits.failure("distance symbol \(distanceSymbol)") }
            let distance = Self.distanceBase[distanceSymbol] + Int(try bits.bits(Self.distanceExtra[distanceSymbol]))
            guard distance <= output.count else {
                throw bits.failure("distance \(distance) reaches before the start of the output (\(output.count) bytes)")
            }
            try ensureRoom(length)
            // The source may overlap the bytes being written (distance < length repeats a pattern).
            var source = output.count - distance
            for _ in 0..<length {
                output.append(output[source])
                source += 1
            }
        }
    }
}
