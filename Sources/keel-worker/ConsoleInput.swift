import KeelSystem
import KeelVM
#if canImport(Glibc)
import Glibc
#endif

/// Forwards standard input to the guest's serial port on its own thread. On an interactive
/// terminal, Ctrl-A x stops the VM and Ctrl-A a sends a literal Ctrl-A (as in QEMU).
enum ConsoleInput {
    static let escape: UInt8 = 0x01

    static func start(partition: Partition, escapeEnabled: Bool) throws {
        _ = try NamedThread(name: "keel-console") {
            var escaped = false
            while true {
                let input = Terminal.readInput()
                if input.isEmpty { return }  // end of input: the guest keeps running
                var pending: [UInt8] = []
                pending.reserveCapacity(input.count)
                for byte in input {
                    if escapeEnabled && escaped {
                        escaped = false
                        if byte == UInt8(ascii: "x") { partition.requestStop(); return }
                        if byte != escape { continue }
                    } else if escapeEnabled && byte == escape {
                        escaped = true
                        continue
                    }
                    pending.append(byte)
                }
                var offset = 0
                while offset < pending.count {
                    offset += partition.sendConsoleInput(pending[offset...])
                    if offset < pending.count { usleep(1000) }
                }
            }
        }
    }
}
