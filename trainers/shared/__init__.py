"""Parts that two methods use, below both of them: PromptKD and the TextRefiner plug-in share the
feature alignment and the distillation loss. A method module imports these, never another method's
package."""
