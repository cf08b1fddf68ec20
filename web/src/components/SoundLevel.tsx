// The microphone's level, 0-1: shows that it still hears (Listen, and while following).

export function SoundLevel({ level }: { level: number }) {
  return (
    <label className="meter-label">
      <span>Sound level</span>
      <meter min={0} max={1} low={0.05} high={0.9} optimum={0.5} value={level}>
        {Math.round(level * 100)} %
      </meter>
    </label>
  );
}
