import KeelHyperV
import Testing

@Suite struct GuestOSIdentityTests {
    @Test func linuxVersionsAsTheDebianKernelsWriteThem() {
        #expect(GuestOSIdentity(rawValue: 0x8100_0006_01C0_0000).description.hasPrefix("Linux 6.1.192 "))
        #expect(GuestOSIdentity(rawValue: 0x8100_0006_0C75_0000).description.hasPrefix("Linux 6.12.117 "))
    }

    @Test func otherSystemsAndZero() {
        #expect(GuestOSIdentity(rawValue: 0).description == "none")
        #expect(GuestOSIdentity(rawValue: 0x0001_0406_0000_0000).description == "guest OS id 0x1040600000000")
    }
}
