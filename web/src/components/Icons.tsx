// Icons drawn inline (no icon font, no emoji that a system may lack).

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 32 32" width="36" height="36" aria-hidden="true" focusable="false">
      <circle cx="16" cy="16" r="15" fill="currentColor" />
      <path className="logo-cut" d="M7 15h18a9 9 0 0 1-18 0z" />
      <path className="logo-steam" d="M11 11l4-6M17 11l5-5" strokeWidth="2" strokeLinecap="round" />
    </svg>
  );
}

export function MicIcon({ size = 20 }: { size?: number }) {
  return (
    <svg className="icon" viewBox="0 0 24 24" width={size} height={size} aria-hidden="true" focusable="false">
      <rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor" />
      <path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" stroke="currentColor" strokeWidth="2" fill="none" strokeLinecap="round" />
    </svg>
  );
}
