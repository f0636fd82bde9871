extension StringProtocol {
    /// The lines of a text, ended by `\n`, `\r\n` or a lone `\r`, without their endings. Text from a serial console
    /// or a Windows editor ends its lines with `\r\n`, which Swift reads as one `Character` that is not `"\n"`, so
    /// splitting on `"\n"` would read such a file as a single line. Other Unicode line separators (VT, FF, NEL,
    /// U+2028) are left in the line, as the C tools that read these files leave them.
    ///
    /// Like `split(separator: "\n", omittingEmptySubsequences: false)`, a text that ends with a line ending
    /// gives an empty last line, so line numbers (`index + 1`) count exactly as an editor does.
    public func textLines() -> [SubSequence] {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
    }

    /// `textLines()` without the empty lines.
    public func nonEmptyTextLines() -> [SubSequence] {
        split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
    }
}
