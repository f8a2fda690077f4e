/// Helpers shared by the port devices for hostile access sizes.
enum PortAccess {
    /// All-ones for an access of `size` bytes (sizes outside 1...4 are clamped).
    @inline(__always)
    static func mask(_ size: Int) -> UInt32 {
        switch size {
        case ...1: return 0xFF
        case 2: return 0xFFFF
        case 3: return 0xFF_FFFF
        default: return 0xFFFF_FFFF
        }
    }

    /// Clamps a guest-supplied size to 1...4.
    @inline(__always)
    static func clampedSize(_ size: Int) -> Int { min(max(size, 1), 4) }
}

/// Fixed-capacity FIFO whose storage is allocated once, at init. Mutating it in place inside a
/// `Mutex` never allocates.
struct FixedRing<Element: Sendable>: Sendable {
    private var storage: [Element]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int, filler: Element) {
        storage = Array(repeating: filler, count: max(1, capacity))
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == storage.count }
    var freeSpace: Int { storage.count - count }

    /// Appends `element`; returns false (and drops it) when full.
    @discardableResult
    mutating func push(_ element: Element) -> Bool {
        guard count < storage.count else { return false }
        var index = head + count
        if index >= storage.count { index -= storage.count }
        storage[index] = element
        count += 1
        return true
    }

    mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return element
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }
}
