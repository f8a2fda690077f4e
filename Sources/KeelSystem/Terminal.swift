#if canImport(Glibc)
import Glibc
#endif

/// The process's standard streams as a VM console: unbuffered byte output, blocking input, and
/// raw mode for an interactive terminal (restored at exit).
public enum Terminal {
    /// Writes one byte to standard output (the serial console's transmit path).
    public static func writeOutput(_ byte: UInt8) {
        var b = byte
        while write(STDOUT_FILENO, &b, 1) < 0 && errno == EINTR {}
    }

    /// Writes text to standard error (log lines).
    public static func writeError(_ text: String) {
        var line = text
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    /// Blocks for input; returns an empty array at end of input or on error.
    public static func readInput(maxCount: Int = 256) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maxCount)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, maxCount) }
            if n < 0 && errno == EINTR { continue }
            return n > 0 ? Array(buffer[0..<n]) : []
        }
    }

    public static var inputIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    nonisolated(unsafe) private static var savedMode = termios()
    nonisolated(unsafe) private static var rawModeActive = false

    /// Puts an interactive standard input into raw mode so keys (Ctrl-C included) go to the
    /// guest; call `restoreMode` before exiting. Called from the main thread only.
    public static func enterRawMode() {
        guard inputIsTerminal, !rawModeActive, tcgetattr(STDIN_FILENO, &savedMode) == 0 else { return }
        var raw = savedMode
        cfmakeraw(&raw)
        if tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0 { rawModeActive = true }
    }

    public static func restoreMode() {
        guard rawModeActive else { return }
        tcsetattr(STDIN_FILENO, TCSANOW, &savedMode)
        rawModeActive = false
    }
}
